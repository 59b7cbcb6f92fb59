/*
 * train_impl.h - forward, loss, backprop and the training loop of a dense
 * stack over one flat parameter buffer, expanded per dtype by train.c.
 *
 * A batch goes through the layers in chunks of at most net->chunk_rows rows
 * (a fixed function of the network, so results never depend on timing); the
 * gradients of later chunks are summed into those of the first.  Workspace for
 * a chunk of R rows (fo_net_workspace): every layer's output, two gradient
 * buffers of the widest layer and the chunk's gathered x, y and weights; plus
 * one gradient buffer when a batch has more than one chunk.
 */
#define FO_CAT_(a, b) a##_##b
#define FO_CAT(a, b) FO_CAT_(a, b)
#define FO_FN(name) FO_CAT(name, S)

typedef struct {
    T *act[FO_MAX_LAYERS]; /* act[l]: (R, units[l+1]) */
    T *z[FO_MAX_LAYERS];   /* its pre-activation, where fo_net_keeps_z, else NULL */
    T *mask[FO_MAX_LAYERS], *drop[FO_MAX_LAYERS]; /* its dropout mask and dropped output, or NULL */
    T *delta0, *delta1;    /* (R, widest) each */
    T *xb, *yb, *wb;       /* a chunk's gathered rows: (R, units[0]), (R, units[L]), (R) */
    T *acc;                /* (n_params): a later chunk's gradients, or NULL (one chunk) */
    size_t rows;           /* R */
} FO_FN(fo_work);

static FO_FN(fo_work) FO_FN(fo_work_split)(const fo_net *net, size_t B, T *work)
{
    FO_FN(fo_work) w;
    const size_t L = net->n_layers, R = B < net->chunk_rows ? B : net->chunk_rows;
    w.rows = R;
    for (size_t l = 0; l < L; l++) {
        w.act[l] = work;
        work += R * net->units[l + 1];
    }
    for (size_t l = 0; l < L; l++) {
        w.z[l] = w.mask[l] = w.drop[l] = NULL;
        if (fo_net_keeps_z(net, l)) {
            w.z[l] = work;
            work += R * net->units[l + 1];
        }
        if (net->dropout[l] > 0) {
            w.mask[l] = work;
            work += R * net->units[l + 1];
            w.drop[l] = work;
            work += R * net->units[l + 1];
        }
    }
    w.delta0 = work;
    work += R * net->widest;
    w.delta1 = work;
    work += R * net->widest;
    w.xb = work;
    work += R * net->units[0];
    w.yb = work;
    work += R * net->units[L];
    w.wb = work;
    work += R;
    w.acc = B > R ? work : NULL;
    return w;
}

/* rows of the data a chunk reads: in place, or gathered into the workspace */
typedef struct {
    const T *x, *y, *sw;
} FO_FN(fo_rows);

/* rows r0 .. r0 + R of a batch: x, y, sw point at the batch's first row, or,
 * with idx (the batch's row numbers), at the data set's first row */
static FO_FN(fo_rows) FO_FN(fo_chunk)(const fo_net *net, const T *x, const T *y, const T *sw,
                                      const int64_t *idx, size_t r0, size_t R, FO_FN(fo_work) *w)
{
    const size_t IN = net->units[0], OUT = net->ycols;
    FO_FN(fo_rows) c;
    if (idx == NULL) {
        c.x = x + r0 * IN;
        c.y = y ? y + r0 * OUT : NULL;
        c.sw = sw ? sw + r0 : NULL;
        return c;
    }
    for (size_t i = 0; i < R; i++) {
        const size_t r = (size_t)idx[r0 + i];
        memcpy(w->xb + i * IN, x + r * IN, IN * sizeof(T));
        memcpy(w->yb + i * OUT, y + r * OUT, OUT * sizeof(T));
        if (sw)
            w->wb[i] = sw[r];
    }
    c.x = w->xb;
    c.y = w->yb;
    c.sw = sw ? w->wb : NULL;
    return c;
}

/* the dropout mask's shape for R rows of F features (Keras' noise_shape) */
static void FO_FN(fo_mask_shape)(const fo_net *net, size_t l, size_t R, size_t F, size_t *MR, size_t *MC)
{
    *MR = net->noise[l] == FO_NOISE_COLS ? 1 : R;
    *MC = net->noise[l] == FO_NOISE_ROWS ? 1 : F;
}

/* forward through every layer, keeping each layer's output in w->act (and
 * z where the backward pass or a fused loss reads it, if keep_z); with rng,
 * each layer's dropout (w->drop: what the next layer reads) */
static void FO_FN(fo_forward_keep)(const T *x, const T *params, const fo_net *net, size_t R,
                                   FO_FN(fo_work) *w, int keep_z, fo_rng *rng)
{
    const T *in = x;
    const size_t L = net->n_layers;
    for (size_t l = 0; l < L; l++) {
        const T *bias = net->use_bias[l] ? params + net->bias_off[l] : NULL;
        const int act = net->act[l];
        const int z_read = fo_act_needs_z(act) || (l + 1 == L && fo_loss_fuses(&net->loss, act));
        const size_t F = net->units[l + 1];
        FO_FN(fo_dense_forward_ex)(w->act[l], keep_z && z_read ? w->z[l] : NULL, in,
                                   params + net->kernel_off[l], bias, R, net->units[l], F, act,
                                   net->act_param[l]);
        in = w->act[l];
        if (rng && w->drop[l]) {
            size_t MR, MC;
            FO_FN(fo_mask_shape)(net, l, R, F, &MR, &MC);
            FO_FN(fo_dropout_forward)(w->drop[l], w->mask[l], w->act[l], R, F, MR, MC,
                                      net->dropout[l], rng);
            in = w->drop[l];
        }
    }
}

int FO_FN(fo_net_forward)(T *out, const T *x, const T *params, const fo_net *net, size_t B,
                          T *work, fo_ctl *ctl)
{
    const size_t L = net->n_layers, IN = net->units[0], OUT = net->units[L];
    FO_FN(fo_work) w = FO_FN(fo_work_split)(net, B, work);
    for (size_t r0 = 0; r0 < B; r0 += w.rows) {
        const size_t R = B - r0 < w.rows ? B - r0 : w.rows;
        if (r0 > 0 && fo_ctl_tick(ctl, (double)w.rows * (double)net->n_params))
            return -1;
        w.act[L - 1] = out + r0 * OUT; /* the last layer writes straight into out */
        FO_FN(fo_forward_keep)(x + r0 * IN, params, net, R, &w, 0, NULL);
    }
    return 0;
}

/* Keras' mean_squared_error, loss_i = mean_j (pred_ij - y_ij)^2, with
 * d(batch loss)/d(pred_ij) = 2 sw_i (pred_ij - y_ij) / (B OUT) */
static double FO_FN(fo_loss_mse)(T *dpred, const T *pred, const T *y, const T *sw, size_t R,
                                 size_t OUT, size_t B, fo_stats *st)
{
    const double count = (double)B * (double)OUT, scale = 2.0 / count;
    double sse = 0, sae = 0, weighted = 0;
    if (sw == NULL) {
        FO_FN(fo_mse)(dpred, pred, y, R * OUT, scale, &sse, &sae);
        weighted = sse;
    } else {
        for (size_t i = 0; i < R; i++) {
            double s, a;
            FO_FN(fo_mse)(dpred ? dpred + i * OUT : NULL, pred + i * OUT, y + i * OUT, OUT,
                          scale * (double)sw[i], &s, &a);
            sse += s;
            sae += a;
            weighted += (double)sw[i] * s;
        }
    }
    st->sse += sse;
    st->sae += sae;
    return weighted / count;
}

/* The loss of R rows of a batch of B rows (a: (R, OUT), the last layer's
 * output, z its pre-activation; y: (R, ycols); sw: (R) or NULL): returns their
 * part of the batch loss, reduced over the whole batch as net->loss says
 * (wscale: 1 / the batch's weight total for "mean_with_sample_weight"), adds
 * the unweighted error sums to st (outputs shaped as y) and, if dz, writes
 * d(batch loss)/d(z), the last layer's pre-activation gradient.  The one place
 * the loss is computed, in training and evaluation alike. */
static double FO_FN(fo_batch_loss)(const fo_net *net, T *dz, const T *z, const T *a, const T *y,
                                   const T *sw, size_t R, size_t B, double wscale, fo_stats *st)
{
    const size_t L = net->n_layers, OUT = net->units[L];
    const int act = net->act[L - 1];
    const double param = net->act_param[L - 1];
    const fo_loss_spec *spec = &net->loss;
    if (spec->kind == FO_LOSS_MSE && spec->reduction == FO_REDUCE_SUM_OVER_BATCH_SIZE) {
        const double l = FO_FN(fo_loss_mse)(dz, a, y, sw, R, OUT, B, st);
        if (dz && act != FO_LINEAR)
            FO_FN(fo_act_backward)(dz, dz, z, a, R, OUT, act, param);
        return l;
    }
    if (net->ycols == OUT) {
        double sse = 0, sae = 0;
        FO_FN(fo_mse)(NULL, a, y, R * OUT, 0, &sse, &sae);
        st->sse += sse;
        st->sae += sae;
    }
    /* the rows' sum of w_b l_b, scaled to the batch's reduction */
    fo_loss_spec sum = *spec;
    sum.reduction = FO_REDUCE_SUM;
    double scale = 1;
    if (spec->reduction == FO_REDUCE_SUM_OVER_BATCH_SIZE || spec->reduction == FO_REDUCE_NONE)
        scale = 1.0 / (double)B;
    else if (spec->reduction == FO_REDUCE_MEAN_WITH_SAMPLE_WEIGHT)
        scale = wscale;
    const double l = FO_FN(fo_act_loss)(dz, NULL, z, a, y, sw, R, OUT, act, param, &sum);
    if (dz && scale != 1) {
        const T c = (T)scale;
        for (size_t i = 0; i < R * OUT; i++)
            dz[i] *= c;
    }
    return l * scale;
}

/* 1 / the weight total of a batch for "mean_with_sample_weight" (0 if it is 0) */
static double FO_FN(fo_weight_scale)(const fo_net *net, const T *sw, const int64_t *idx, size_t B)
{
    if (net->loss.reduction != FO_REDUCE_MEAN_WITH_SAMPLE_WEIGHT)
        return 1;
    if (sw == NULL)
        return 1.0 / (double)B;
    double total = 0;
    for (size_t i = 0; i < B; i++)
        total += (double)sw[idx ? (size_t)idx[i] : i];
    return total != 0 ? 1.0 / total : 0;
}

/* Keras' kernel regularizers: penalty l1 * sum|k| + l2 * sum k^2 and, if
 * grads, gradient l1 * sign(k) + 2 * l2 * k added to dkernel.  Returns the penalty. */
static double FO_FN(fo_regularize)(T *grads, const T *params, const fo_net *net)
{
    double penalty = 0;
    for (size_t l = 0; l < net->n_layers; l++) {
        const double l1 = net->l1[l], l2 = net->l2[l];
        if (l1 == 0 && l2 == 0)
            continue;
        const size_t off = net->kernel_off[l];
        const size_t n = net->units[l] * net->units[l + 1];
        const T *restrict k = params + off;
        T *restrict g = grads ? grads + off : NULL;
        const T c1 = (T)l1, c2 = (T)(2 * l2);
        double s1 = 0, s2 = 0;
        for (size_t i = 0; i < n; i++) {
            if (g) {
                const T sgn = (T)((k[i] > 0) - (k[i] < 0));
                g[i] += c1 * sgn + c2 * k[i];
            }
            s1 += fabs((double)k[i]);
            s2 += (double)k[i] * (double)k[i];
        }
        penalty += l1 * s1 + l2 * s2;
    }
    return penalty;
}

/* Loss and gradients of the batch of B rows at x, y, sw (through idx, see
 * fo_chunk).  Returns 0, or -1 if ctl stopped it between two chunks. */
static int FO_FN(fo_batch_gradients)(double *loss_out, T *grads, const T *x, const T *y,
                                     const T *sw, const int64_t *idx, const T *params,
                                     const fo_net *net, size_t B, FO_FN(fo_work) *w,
                                     fo_stats *st, double *acc, fo_rng *rng, fo_ctl *ctl)
{
    const size_t L = net->n_layers, OUT = net->units[L];
    fo_stats local = {0, 0, 0, 0};
    double loss = 0;
    const double wscale = FO_FN(fo_weight_scale)(net, sw, idx, B);
    for (size_t r0 = 0; r0 < B; r0 += w->rows) {
        const size_t R = B - r0 < w->rows ? B - r0 : w->rows;
        if (r0 > 0 && fo_ctl_tick(ctl, 3.0 * (double)w->rows * (double)net->n_params))
            return -1;
        FO_FN(fo_rows) c = FO_FN(fo_chunk)(net, x, y, sw, idx, r0, R, w);
        T *g = r0 == 0 ? grads : w->acc;
        FO_FN(fo_forward_keep)(c.x, params, net, R, w, 1, rng);
        loss += FO_FN(fo_batch_loss)(net, w->delta0, w->z[L - 1], w->act[L - 1], c.y, c.sw, R, B,
                                     wscale, &local);
        if (acc && net->n_metrics)
            FO_FN(fo_metrics_update)(acc, net->metric, net->n_metrics, w->act[L - 1], c.y,
                                     net->ycols, NULL, R, OUT);
        /* delta0 holds dL/dz of the last layer: its backward runs as linear */
        T *d = w->delta0, *dnext = w->delta1;
        for (size_t l = L; l-- > 0;) {
            T *dbias = net->use_bias[l] ? g + net->bias_off[l] : NULL;
            const int last = l + 1 == L;
            if (!last && rng && w->drop[l]) {
                size_t MR, MC;
                FO_FN(fo_mask_shape)(net, l, R, net->units[l + 1], &MR, &MC);
                FO_FN(fo_dropout_backward)(d, d, w->mask[l], R, net->units[l + 1], MR, MC);
            }
            const T *in = l == 0 ? c.x : (rng && w->drop[l - 1] ? w->drop[l - 1] : w->act[l - 1]);
            FO_FN(fo_dense_backward_ex)(l > 0 ? dnext : NULL, g + net->kernel_off[l], dbias, d, in,
                                        params + net->kernel_off[l], w->z[l], w->act[l], R,
                                        net->units[l], net->units[l + 1],
                                        last ? FO_LINEAR : net->act[l], net->act_param[l]);
            T *tmp = d;
            d = dnext;
            dnext = tmp;
        }
        if (r0 > 0)
            for (size_t i = 0; i < net->n_params; i++)
                grads[i] += g[i];
    }
    /* the last chunk's work counts toward the next poll (a stop it asks for
     * is seen by the caller, at the step boundary) */
    fo_ctl_tick(ctl, 3.0 * (double)(B % w->rows ? B % w->rows : w->rows) * (double)net->n_params);
    *loss_out = fo_add_stats(st, &local, loss, FO_FN(fo_regularize)(grads, params, net), B);
    return 0;
}

double FO_FN(fo_net_gradients)(T *grads, const T *x, const T *y, const T *sw, const T *params,
                               const fo_net *net, size_t B, T *work, fo_stats *st, double *acc,
                               fo_rng *rng, fo_ctl *ctl)
{
    FO_FN(fo_work) w = FO_FN(fo_work_split)(net, B, work);
    double loss;
    if (FO_FN(fo_batch_gradients)(&loss, grads, x, y, sw, NULL, params, net, B, &w, st, acc, rng,
                                  ctl) < 0)
        return NAN;
    return loss;
}

double FO_FN(fo_net_evaluate)(const T *x, const T *y, const T *sw, const T *params,
                              const fo_net *net, size_t B, T *work, fo_stats *st, double *acc,
                              fo_ctl *ctl)
{
    const size_t L = net->n_layers, OUT = net->units[L];
    FO_FN(fo_work) w = FO_FN(fo_work_split)(net, B, work);
    fo_stats local = {0, 0, 0, 0};
    double loss = 0;
    const double wscale = FO_FN(fo_weight_scale)(net, sw, NULL, B);
    for (size_t r0 = 0; r0 < B; r0 += w.rows) {
        const size_t R = B - r0 < w.rows ? B - r0 : w.rows;
        if (r0 > 0 && fo_ctl_tick(ctl, (double)w.rows * (double)net->n_params))
            return NAN;
        FO_FN(fo_rows) c = FO_FN(fo_chunk)(net, x, y, sw, NULL, r0, R, &w);
        FO_FN(fo_forward_keep)(c.x, params, net, R, &w, 1, NULL);
        loss += FO_FN(fo_batch_loss)(net, NULL, w.z[L - 1], w.act[L - 1], c.y, c.sw, R, B, wscale,
                                     &local);
        if (acc && net->n_metrics)
            FO_FN(fo_metrics_update)(acc, net->metric, net->n_metrics, w.act[L - 1], c.y,
                                     net->ycols, NULL, R, OUT);
    }
    return fo_add_stats(st, &local, loss, FO_FN(fo_regularize)(NULL, params, net), B);
}

/* the update buffers of elements [off, off + n) of the flat buffers */
static void FO_FN(fo_view)(fo_optim_buffers *b, T *params, T *grads, void *const slot[FO_MAX_SLOTS],
                           size_t off, size_t n)
{
    b->dtype = FO_DTYPE;
    b->var = params + off;
    b->grad = grads + off;
    for (int k = 0; k < FO_MAX_SLOTS; k++)
        b->slot[k] = slot[k] ? (T *)slot[k] + off : NULL;
    b->n = n;
}

fo_report FO_FN(fo_net_train)(T *params, T *grads, fo_opt *opt, fo_data *data_io, const fo_net *net,
                              size_t n_steps, T *work, fo_stats *per_epoch, double *per_epoch_acc,
                              double *loss_start_io, fo_ctl *ctl)
{
    const size_t IN = net->units[0], OUT = net->ycols;
    fo_report rep = {0, -1, FO_OK, NAN};
    FO_FN(fo_work) w = FO_FN(fo_work_split)(net, data_io->batch, work);

    /* the variables of one update: the whole model at once, unless each
     * kernel and bias must have its own norm clipped (clipnorm) */
    fo_optim_buffers bufs[2 * FO_MAX_LAYERS];
    size_t nbufs = 0;
    if (opt->h.clipnorm > 0) {
        for (size_t l = 0; l < net->n_layers; l++) {
            FO_FN(fo_view)(&bufs[nbufs++], params, grads, opt->slot, net->kernel_off[l],
                           net->units[l] * net->units[l + 1]);
            if (net->use_bias[l])
                FO_FN(fo_view)(&bufs[nbufs++], params, grads, opt->slot, net->bias_off[l],
                               net->units[l + 1]);
        }
    } else {
        FO_FN(fo_view)(&bufs[nbufs++], params, grads, opt->slot, 0, net->n_params);
    }

    /* What every step updates besides the model's buffers (the batch
     * position, the first loss, the epoch's sums, the step count) is kept in
     * this call's locals and written back once at the end, where the caller
     * reads it: the caller's copies live in small heap blocks (a Python
     * object, a 1-element array) that may share a cache line with objects of
     * another thread, which may be training another model at the same time. */
    fo_data data = *data_io;
    double loss_start = *loss_start_io;
    const T *X = data.x, *Y = data.y, *SW = data.sw;
    size_t e = 0;
    fo_stats epoch_sums = per_epoch[0];
    for (size_t s = 0; s < n_steps; s++) {
        fo_rng before; /* the generator before the step (shuffle, dropout), for a step not taken */
        if (data.rng)
            before = *data.rng;
        if (data.pos == 0 && data.shuffle) {
            for (size_t i = 0; i < data.n; i++)
                data.perm[i] = (int64_t)i;
            fo_shuffle(data.perm, data.n, data.rng);
        }
        const size_t start = data.pos * data.batch;
        const size_t B = data.n - start < data.batch ? data.n - start : data.batch;
        fo_stats st = {0, 0, 0, 0};
        double loss;
        int stopped;
        double *acc = per_epoch_acc && net->n_acc ? per_epoch_acc + e * net->n_acc : NULL;
        if (data.shuffle)
            stopped = FO_FN(fo_batch_gradients)(&loss, grads, X, Y, SW, data.perm + start, params,
                                                net, B, &w, &st, acc, data.rng, ctl);
        else
            stopped = FO_FN(fo_batch_gradients)(&loss, grads, X + start * IN, Y + start * OUT,
                                                SW ? SW + start : NULL, NULL, params, net, B, &w,
                                                &st, acc, data.rng, ctl);
        if (stopped < 0) { /* in the middle of a batch: this step is not taken */
            if (data.rng)
                *data.rng = before; /* nor its epoch's shuffle or dropout masks */
            break;
        }
        if (isnan(loss_start))
            loss_start = loss;
        if (rep.bad == FO_OK && (!isfinite(loss) || (loss_start > 0 && loss > 1e6 * loss_start))) {
            rep.bad = isfinite(loss) ? FO_LOSS_BLOWUP : FO_NONFINITE_LOSS;
            rep.bad_step = (int64_t)s;
        }
        opt->h.learning_rate = opt->lr[opt->n_lr == 1 ? 0 : s];
        const int finite = fo_optim_update(opt->kind, nbufs, bufs, &opt->h);
        if (!finite && rep.bad == FO_OK) {
            rep.bad = FO_NONFINITE_PARAMS;
            rep.bad_step = (int64_t)s;
        }
        opt->h.iteration++;
        rep.done++;
        rep.loss = loss;
        epoch_sums.sse += st.sse;
        epoch_sums.sae += st.sae;
        epoch_sums.penalty += st.penalty;
        epoch_sums.loss += st.loss;
        if (++data.pos == data.steps) {
            data.pos = 0;
            per_epoch[e++] = epoch_sums;
            if (s + 1 < n_steps)
                epoch_sums = per_epoch[e];
        }
        if (ctl && ctl->stop)
            break;
    }
    if (data.pos != 0) /* an epoch left part way */
        per_epoch[e] = epoch_sums;
    if (opt->step && rep.done)
        *opt->step = opt->h.iteration;
    data_io->pos = data.pos;
    *loss_start_io = loss_start;
    return rep;
}

#undef FO_FN
#undef FO_CAT
#undef FO_CAT_
