/*
 * train_impl.h - forward, backprop and the training epoch of a dense stack
 * over one flat parameter buffer, expanded per dtype by train.c.
 *
 * Workspace (elements, for B rows): the output of every layer, two gradient
 * buffers of the widest layer, and the gathered batch x and y.
 */
#define FO_CAT_(a, b) a##_##b
#define FO_CAT(a, b) FO_CAT_(a, b)
#define FO_FN(name) FO_CAT(name, S)

typedef struct {
    T *act[FO_MAX_LAYERS]; /* act[l]: (B, units[l+1]) */
    T *delta0, *delta1;    /* (B, max units) each */
    T *xb, *yb;            /* (B, units[0]), (B, units[L]) */
} FO_FN(fo_work);

static FO_FN(fo_work) FO_FN(fo_work_split)(const fo_net *net, size_t B, T *work)
{
    FO_FN(fo_work) w;
    size_t L = net->n_layers, widest = fo_net_widest(net);
    for (size_t l = 0; l < L; l++) {
        w.act[l] = work;
        work += B * net->units[l + 1];
    }
    w.delta0 = work;
    work += B * widest;
    w.delta1 = work;
    work += B * widest;
    w.xb = work;
    work += B * net->units[0];
    w.yb = work;
    return w;
}

/* forward through every layer, keeping each layer's output in w->act */
static void FO_FN(fo_forward_keep)(const T *x, const T *params, const fo_net *net, size_t B,
                                   FO_FN(fo_work) *w)
{
    const T *in = x;
    for (size_t l = 0; l < net->n_layers; l++) {
        const T *bias = net->use_bias[l] ? params + fo_net_bias_offset(net, l) : NULL;
        FO_FN(fo_dense_forward)(w->act[l], in, params + fo_net_kernel_offset(net, l), bias, B,
                                net->units[l], net->units[l + 1], net->act[l]);
        in = w->act[l];
    }
}

void FO_FN(fo_net_forward)(T *out, const T *x, const T *params, const fo_net *net, size_t B,
                           T *work)
{
    FO_FN(fo_work) w = FO_FN(fo_work_split)(net, B, work);
    FO_FN(fo_forward_keep)(x, params, net, B, &w);
    memcpy(out, w.act[net->n_layers - 1], B * net->units[net->n_layers] * sizeof(T));
}

/* Keras' kernel regularizers: penalty l1 * sum|k| + l2 * sum k^2, gradient
 * l1 * sign(k) + 2 * l2 * k added to dkernel.  Returns the penalty. */
static double FO_FN(fo_regularize)(T *grads, const T *params, const fo_net *net)
{
    double penalty = 0;
    for (size_t l = 0; l < net->n_layers; l++) {
        const double l1 = net->l1[l], l2 = net->l2[l];
        if (l1 == 0 && l2 == 0)
            continue;
        const size_t off = fo_net_kernel_offset(net, l);
        const size_t n = net->units[l] * net->units[l + 1];
        const T *restrict k = params + off;
        T *restrict g = grads + off;
        const T c1 = (T)l1, c2 = (T)(2 * l2);
        double s1 = 0, s2 = 0;
        for (size_t i = 0; i < n; i++) {
            const T sgn = (T)((k[i] > 0) - (k[i] < 0));
            g[i] += c1 * sgn + c2 * k[i];
            s1 += fabs((double)k[i]);
            s2 += (double)k[i] * (double)k[i];
        }
        penalty += l1 * s1 + l2 * s2;
    }
    return penalty;
}

/* loss and gradients of one batch already in place at x, y */
static double FO_FN(fo_batch_gradients)(T *grads, const T *x, const T *y, const T *params,
                                        const fo_net *net, size_t B, FO_FN(fo_work) *w,
                                        fo_stats *st)
{
    const size_t L = net->n_layers, OUT = net->units[L];
    double sse, sae;
    FO_FN(fo_forward_keep)(x, params, net, B, w);
    /* Keras' mean_squared_error: mean over all B * OUT outputs */
    FO_FN(fo_mse)(w->delta0, w->act[L - 1], y, B * OUT, 2.0 / (double)(B * OUT), &sse, &sae);
    T *d = w->delta0, *dnext = w->delta1;
    for (size_t l = L; l-- > 0;) {
        T *dbias = net->use_bias[l] ? grads + fo_net_bias_offset(net, l) : NULL;
        FO_FN(fo_dense_backward)(l > 0 ? dnext : NULL, grads + fo_net_kernel_offset(net, l), dbias,
                                 d, l > 0 ? w->act[l - 1] : x, params + fo_net_kernel_offset(net, l),
                                 w->act[l], B, net->units[l], net->units[l + 1], net->act[l]);
        T *tmp = d;
        d = dnext;
        dnext = tmp;
    }
    const double penalty = FO_FN(fo_regularize)(grads, params, net);
    const double loss = sse / (double)(B * OUT) + penalty;
    st->sse += sse;
    st->sae += sae;
    st->penalty += penalty * (double)B;
    st->loss += loss * (double)B;
    return loss;
}

double FO_FN(fo_net_gradients)(T *grads, const T *x, const T *y, const T *params,
                               const fo_net *net, size_t B, T *work, fo_stats *st)
{
    FO_FN(fo_work) w = FO_FN(fo_work_split)(net, B, work);
    return FO_FN(fo_batch_gradients)(grads, x, y, params, net, B, &w, st);
}

/* the update buffers of elements [off, off + n) of the flat buffers */
static void FO_FN(fo_view)(fo_optim_buffers *b, T *params, T *grads, T *slot[FO_MAX_SLOTS],
                           size_t off, size_t n)
{
    b->dtype = FO_DTYPE;
    b->var = params + off;
    b->grad = grads + off;
    for (int k = 0; k < FO_MAX_SLOTS; k++)
        b->slot[k] = slot[k] ? slot[k] + off : NULL;
    b->n = n;
}

size_t FO_FN(fo_train_epoch)(T *params, T *grads, T *slot[FO_MAX_SLOTS], int kind,
                             fo_optim_hyper *h, const double *lr, size_t n_lr, const T *X,
                             const T *Y, size_t n, size_t batch, const fo_net *net, int64_t *perm,
                             fo_rng *rng, int shuffle, T *work, fo_stats *st)
{
    const size_t IN = net->units[0], OUT = net->units[net->n_layers];
    FO_FN(fo_work) w = FO_FN(fo_work_split)(net, batch, work);

    /* the variables of one update: the whole model at once, unless each
     * kernel and bias must have its own norm clipped (clipnorm) */
    fo_optim_buffers bufs[2 * FO_MAX_LAYERS];
    size_t nbufs = 0;
    if (h->clipnorm > 0) {
        for (size_t l = 0; l < net->n_layers; l++) {
            FO_FN(fo_view)(&bufs[nbufs++], params, grads, slot, fo_net_kernel_offset(net, l),
                           net->units[l] * net->units[l + 1]);
            if (net->use_bias[l])
                FO_FN(fo_view)(&bufs[nbufs++], params, grads, slot, fo_net_bias_offset(net, l),
                               net->units[l + 1]);
        }
    } else {
        FO_FN(fo_view)(&bufs[nbufs++], params, grads, slot, 0, fo_net_n_params(net));
    }

    if (shuffle) {
        for (size_t i = 0; i < n; i++)
            perm[i] = (int64_t)i;
        fo_shuffle(perm, n, rng);
    }
    size_t steps = 0;
    for (size_t start = 0; start < n; start += batch, steps++) {
        const size_t B = n - start < batch ? n - start : batch;
        const T *xb = X + start * IN, *yb = Y + start * OUT;
        if (shuffle) {
            for (size_t i = 0; i < B; i++) {
                const size_t r = (size_t)perm[start + i];
                memcpy(w.xb + i * IN, X + r * IN, IN * sizeof(T));
                memcpy(w.yb + i * OUT, Y + r * OUT, OUT * sizeof(T));
            }
            xb = w.xb;
            yb = w.yb;
        }
        FO_FN(fo_batch_gradients)(grads, xb, yb, params, net, B, &w, st);
        h->learning_rate = lr[n_lr == 1 ? 0 : steps];
        fo_optim_update(kind, nbufs, bufs, h);
        h->iteration++;
    }
    return steps;
}

size_t FO_FN(fo_train_epochs)(T *params, T *grads, T *slot[FO_MAX_SLOTS], int kind,
                              fo_optim_hyper *h, const double *lr, size_t n_lr, const T *X,
                              const T *Y, size_t n, size_t batch, const fo_net *net, int64_t *perm,
                              fo_rng *rng, int shuffle, T *work, size_t epochs, fo_stats *per_epoch)
{
    const size_t steps = n == 0 ? 0 : (n + batch - 1) / batch;
    size_t done = 0;
    for (size_t e = 0; e < epochs; e++) {
        const double *lr_e = n_lr == 1 ? lr : lr + e * steps;
        per_epoch[e] = (fo_stats){0, 0, 0, 0};
        done += FO_FN(fo_train_epoch)(params, grads, slot, kind, h, lr_e, n_lr == 1 ? 1 : steps, X,
                                      Y, n, batch, net, perm, rng, shuffle, work, &per_epoch[e]);
    }
    return done;
}

#undef FO_FN
#undef FO_CAT
#undef FO_CAT_
