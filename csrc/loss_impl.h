/*
 * loss_impl.h - the loss of one batch and its gradient in one pass, the
 * checks of targets and sample weights, and the metrics' per-batch sums,
 * written once and expanded per dtype by loss.c.  Needs T (element type),
 * S (suffix) and the math functions FO_EXP_FN, FO_LOG_FN, FO_LOG1P_FN,
 * FO_TANH_FN, FO_FABS_FN, FO_FLOOR_FN of that type.
 *
 * Losses follow Keras 3 (keras/src/losses/losses.py and the backends'
 * nn.py): l_b, the loss of row b, is the mean over its C outputs of an
 * elementwise loss or the cross-entropy of the row; the batch loss is
 * sum_b w_b l_b reduced as fo_loss_spec.reduction says.  Sums are kept in
 * double; gradients are computed in T.
 */
#define FO_CAT_(a, b) a##_##b
#define FO_CAT(a, b) FO_CAT_(a, b)
#define FO_FN(name) FO_CAT(name, S)

/* sum over n of (pred - y)^2 and |pred - y|; if dpred: dpred = scale * (pred - y) */
FO_CLONES
void FO_FN(fo_mse)(T *dpred, const T *restrict pred, const T *restrict y, size_t n, double scale,
                   double *sse, double *sae)
{
    double se[4] = {0, 0, 0, 0}, ae[4] = {0, 0, 0, 0};
    const T sc = (T)scale;
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++) {
            T e = pred[i + k] - y[i + k];
            se[k] += (double)e * (double)e;
            ae[k] += fabs((double)e);
            if (dpred)
                dpred[i + k] = sc * e;
        }
    for (; i < n; i++) {
        T e = pred[i] - y[i];
        se[0] += (double)e * (double)e;
        ae[0] += fabs((double)e);
        if (dpred)
            dpred[i] = sc * e;
    }
    *sse = (se[0] + se[1]) + (se[2] + se[3]);
    *sae = (ae[0] + ae[1]) + (ae[2] + ae[3]);
}

/* sigmoid(z) without overflow for any z */
FO_INLINE T FO_FN(fo_sigmoid)(T z)
{
    if (z >= 0)
        return 1 / (1 + FO_EXP_FN(-z));
    const T e = FO_EXP_FN(z);
    return e / (1 + e);
}

/* Elementwise losses over n elements: returns sum of l(p_i, y_i); if g, g_i =
 * coef * dl/dp_i.  MSE e^2; MAE |e|; Huber 0.5 e^2 for |e| <= delta, else
 * delta |e| - 0.5 delta^2; log_cosh |e| + log1p(exp(-2|e|)) - log 2 (Keras'
 * e + softplus(-2e) - log 2); BCE from logits max(z, 0) - z y + log1p(exp(-|z|))
 * with gradient sigmoid(z) - y; BCE from probabilities -(y log p + (1 - y)
 * log(1 - p)) with p clipped to [eps, 1 - eps] (no gradient where clipped).
 * BCE's y is smoothed to y (1 - ls) + ls / 2 first. */
static double FO_FN(fo_elementwise)(T *restrict g, const T *restrict p, const T *restrict y, size_t n,
                                    T coef, const fo_loss_spec *s)
{
    double sum = 0;
    switch (s->kind) {
    case FO_LOSS_MSE:
        for (size_t i = 0; i < n; i++) {
            const T e = p[i] - y[i];
            sum += (double)e * (double)e;
            if (g)
                g[i] = coef * (2 * e);
        }
        break;
    case FO_LOSS_MAE:
        for (size_t i = 0; i < n; i++) {
            const T e = p[i] - y[i];
            sum += FO_FABS_FN(e);
            if (g)
                g[i] = coef * (T)((e > 0) - (e < 0));
        }
        break;
    case FO_LOSS_HUBER: {
        const T d = (T)s->delta, half_d2 = (T)0.5 * d * d;
        for (size_t i = 0; i < n; i++) {
            const T e = p[i] - y[i], ae = FO_FABS_FN(e);
            if (ae <= d) {
                sum += (double)((T)0.5 * e * e);
                if (g)
                    g[i] = coef * e;
            } else {
                sum += (double)(d * ae - half_d2);
                if (g)
                    g[i] = coef * (e > 0 ? d : -d);
            }
        }
        break;
    }
    case FO_LOSS_LOG_COSH: {
        const T ln2 = (T)M_LN2;
        for (size_t i = 0; i < n; i++) {
            const T e = p[i] - y[i], ae = FO_FABS_FN(e);
            sum += (double)(ae + FO_LOG1P_FN(FO_EXP_FN(-2 * ae)) - ln2);
            if (g)
                g[i] = coef * FO_TANH_FN(e);
        }
        break;
    }
    case FO_LOSS_BCE: {
        const T keep = (T)(1 - s->label_smoothing), add = (T)(0.5 * s->label_smoothing);
        if (s->from_logits) {
            for (size_t i = 0; i < n; i++) {
                const T z = p[i], t = y[i] * keep + add;
                sum += (double)((z > 0 ? z : 0) - z * t + FO_LOG1P_FN(FO_EXP_FN(-FO_FABS_FN(z))));
                if (g)
                    g[i] = coef * (FO_FN(fo_sigmoid)(z) - t);
            }
        } else {
            const T lo = (T)FO_LOSS_EPSILON, hi = 1 - lo;
            for (size_t i = 0; i < n; i++) {
                const T t = y[i] * keep + add;
                const T pc = p[i] < lo ? lo : p[i] > hi ? hi : p[i];
                sum -= (double)(t * FO_LOG_FN(pc) + (1 - t) * FO_LOG_FN(1 - pc));
                if (g)
                    g[i] = p[i] >= lo && p[i] <= hi ? coef * ((1 - t) / (1 - pc) - t / pc) : 0;
            }
        }
        break;
    }
    default:
        break;
    }
    return sum;
}

/* max of a row and log sum exp(z - max) (so lse = m + log_s), in double */
static T FO_FN(fo_row_max)(const T *z, size_t C)
{
    T m = z[0];
    for (size_t j = 1; j < C; j++)
        m = z[j] > m ? z[j] : m;
    return m;
}

static double FO_FN(fo_row_logsum)(const T *z, size_t C, T m)
{
    double s = 0;
    for (size_t j = 0; j < C; j++)
        s += (double)FO_EXP_FN(z[j] - m);
    return log(s);
}

/* 1 if v is a class index in [0, C) */
FO_INLINE int FO_FN(fo_is_class)(T v, size_t C)
{
    return v >= 0 && (double)v < (double)C && FO_FLOOR_FN(v) == v;
}

/* Cross-entropy of one row: returns l; if g, g = coef * dl/dp.
 * From logits (log-sum-exp, any finite z): l = sum_c y_c (lse - z_c), gradient
 * softmax(z) * sum(y) - y (p - y for one-hot y).  From probabilities (Keras):
 * q = p / sum p, clipped to [eps, 1 - eps], l = -sum_c y_c log q_c, with the
 * gradient through the normalization (none where clipped).  CCE smooths y to
 * y (1 - ls) + ls / C; SCCE's y is one class index. */
static double FO_FN(fo_crossentropy_row)(T *restrict g, const T *restrict p, const T *restrict y, size_t C,
                                         T coef, const fo_loss_spec *s)
{
    const int sparse = s->kind == FO_LOSS_SCCE;
    size_t t = 0;
    if (sparse) {
        if (!FO_FN(fo_is_class)(y[0], C)) {
            if (g)
                for (size_t j = 0; j < C; j++)
                    g[j] = (T)NAN;
            return NAN;
        }
        t = (size_t)y[0];
    }
    const T keep = sparse ? 1 : (T)(1 - s->label_smoothing);
    const T add = sparse ? 0 : (T)(s->label_smoothing / (double)C);
#define FO_TARGET(j) (sparse ? (T)((j) == t) : y[j] * keep + add)
    double l = 0;
    if (s->from_logits) {
        const T m = FO_FN(fo_row_max)(p, C);
        const double log_s = FO_FN(fo_row_logsum)(p, C, m);
        double ysum = 0;
        for (size_t j = 0; j < C; j++) {
            const T yj = FO_TARGET(j);
            if (yj != 0)
                l += (double)yj * ((double)(m - p[j]) + log_s);
            ysum += (double)yj;
        }
        if (g) {
            const double inv = exp(-log_s); /* 1 / sum exp(z - m) */
            const T ys = (T)ysum;
            for (size_t j = 0; j < C; j++) {
                const T pj = (T)((double)FO_EXP_FN(p[j] - m) * inv);
                g[j] = coef * (pj * ys - FO_TARGET(j));
            }
        }
    } else {
        const T lo = (T)FO_LOSS_EPSILON, hi = 1 - lo;
        double ssum = 0;
        for (size_t j = 0; j < C; j++)
            ssum += (double)p[j];
        const T sum = (T)ssum;
        T dot = 0; /* sum_j (dl/dq_j) q_j */
        for (size_t j = 0; j < C; j++) {
            const T yj = FO_TARGET(j);
            const T q = p[j] / sum, qc = q < lo ? lo : q > hi ? hi : q;
            if (yj != 0)
                l -= (double)yj * (double)FO_LOG_FN(qc);
            if (q >= lo && q <= hi)
                dot -= yj; /* (-y_j / q_j) q_j */
        }
        if (g)
            for (size_t j = 0; j < C; j++) {
                const T yj = FO_TARGET(j);
                const T q = p[j] / sum;
                const T dq = q >= lo && q <= hi ? -yj / q : 0;
                g[j] = coef * ((dq - dot) / sum);
            }
    }
#undef FO_TARGET
    return l;
}

/* the loss of one batch: see fastopt.h */
double FO_FN(fo_loss)(T *dpred, T *values, const T *pred, const T *y, const T *w, size_t B, size_t C,
                      const fo_loss_spec *s)
{
    if (B == 0 || C == 0)
        return 0;
    double wtotal = (double)B;
    if (w && s->reduction == FO_REDUCE_MEAN_WITH_SAMPLE_WEIGHT) {
        wtotal = 0;
        for (size_t b = 0; b < B; b++)
            wtotal += (double)w[b];
    }
    double scale = 1; /* d reduced / d (sum_b w_b l_b) */
    if (s->reduction == FO_REDUCE_SUM_OVER_BATCH_SIZE)
        scale = 1.0 / (double)B;
    else if (s->reduction == FO_REDUCE_MEAN_WITH_SAMPLE_WEIGHT)
        scale = wtotal != 0 ? 1.0 / wtotal : 0;

    const int ce = s->kind == FO_LOSS_CCE || s->kind == FO_LOSS_SCCE;
    const size_t ycols = s->kind == FO_LOSS_SCCE ? 1 : C;
    double total = 0; /* sum_b w_b l_b */
    if (!ce && w == NULL && values == NULL) {
        /* every row has the same weight: one pass over the B * C elements */
        total = FO_FN(fo_elementwise)(dpred, pred, y, B * C, (T)(scale / (double)C), s) / (double)C;
    } else {
        for (size_t b = 0; b < B; b++) {
            const double wb = w ? (double)w[b] : 1.0;
            T *g = dpred ? dpred + b * C : NULL;
            double lb;
            if (ce)
                lb = FO_FN(fo_crossentropy_row)(g, pred + b * C, y + b * ycols, C, (T)(scale * wb), s);
            else
                lb = FO_FN(fo_elementwise)(g, pred + b * C, y + b * C, C,
                                           (T)(scale * wb / (double)C), s) / (double)C;
            if (values)
                values[b] = (T)(wb * lb);
            total += wb * lb;
        }
    }
    return total * scale;
}

double FO_FN(fo_act_loss)(T *dz, T *values, const T *z, const T *a, const T *y, const T *w, size_t B,
                          size_t C, int act, double act_param, const fo_loss_spec *spec)
{
    if (fo_loss_fuses(spec, act)) {
        fo_loss_spec logits = *spec;
        logits.from_logits = 1;
        return FO_FN(fo_loss)(dz, values, z, y, w, B, C, &logits);
    }
    const double l = FO_FN(fo_loss)(dz, values, a, y, w, B, C, spec);
    if (dz)
        FO_FN(fo_act_backward)(dz, dz, z, a, B, C, act, act_param);
    return l;
}

size_t FO_FN(fo_loss_check_targets)(const T *y, size_t B, size_t cols, size_t C, int kind, int strict)
{
    for (size_t b = 0; b < B; b++) {
        const T *r = y + b * cols;
        if (kind == FO_LOSS_SCCE) {
            if (cols != 1 || !FO_FN(fo_is_class)(r[0], C))
                return b;
        } else if (strict && kind == FO_LOSS_CCE) {
            double sum = 0;
            for (size_t j = 0; j < cols; j++) {
                if (!(r[j] >= 0))
                    return b;
                sum += (double)r[j];
            }
            if (!(fabs(sum - 1) <= 1e-3))
                return b;
        } else if (strict && kind == FO_LOSS_BCE) {
            for (size_t j = 0; j < cols; j++)
                if (!(r[j] >= 0 && r[j] <= 1))
                    return b;
        }
    }
    return B;
}

size_t FO_FN(fo_check_weights)(const T *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(w[i] >= 0 && w[i] - w[i] == 0))
            return i;
    return n;
}

/* index of the first largest entry of a row (NaN entries are passed over) */
static size_t FO_FN(fo_argmax)(const T *r, size_t C)
{
    size_t best = 0;
    for (size_t j = 1; j < C; j++)
        if (r[j] > r[best] || (r[best] != r[best] && r[j] == r[j]))
            best = j;
    return best;
}

void FO_FN(fo_metrics_update)(double *acc, const fo_metric_spec *m, size_t n_metrics, const T *pred,
                              const T *y, size_t ycols, const T *w, size_t B, size_t C)
{
    for (size_t b = 0; b < B; b++) {
        const double wb = w ? (double)w[b] : 1.0;
        const T *p = pred + b * C, *t = y + b * ycols;
        double *a = acc;
        for (size_t i = 0; i < n_metrics; i++) {
            const int kind = m[i].kind;
            const int wants_sparse = kind == FO_METRIC_SPARSE_CATEGORICAL_ACCURACY;
            const size_t size = fo_metric_acc_size(&m[i], C);
            if (C == 0 || (wants_sparse ? ycols != 1 : ycols != C)) { /* not this metric's y */
                a += size;
                continue;
            }
            double v = 0; /* the row's value, before weighting */
            switch (kind) {
            case FO_METRIC_MSE:
            case FO_METRIC_RMSE:
                for (size_t j = 0; j < C; j++) {
                    const double e = (double)p[j] - (double)t[j];
                    v += e * e;
                }
                v /= (double)C;
                break;
            case FO_METRIC_MAE:
                for (size_t j = 0; j < C; j++)
                    v += fabs((double)p[j] - (double)t[j]);
                v /= (double)C;
                break;
            case FO_METRIC_ACCURACY:
                for (size_t j = 0; j < C; j++)
                    v += t[j] == p[j];
                v /= (double)C;
                break;
            case FO_METRIC_BINARY_ACCURACY: {
                const T thr = (T)m[i].threshold;
                for (size_t j = 0; j < C; j++)
                    v += t[j] == (T)(p[j] > thr);
                v /= (double)C;
                break;
            }
            case FO_METRIC_CATEGORICAL_ACCURACY:
                v = FO_FN(fo_argmax)(t, C) == FO_FN(fo_argmax)(p, C);
                break;
            case FO_METRIC_SPARSE_CATEGORICAL_ACCURACY:
                v = t[0] == (T)FO_FN(fo_argmax)(p, C);
                break;
            case FO_METRIC_TOP_K_CATEGORICAL_ACCURACY: {
                /* in the top k: fewer than k scores strictly above the target's
                 * (ties count in, as tf.math.in_top_k); a NaN target score never is */
                const T pt = p[FO_FN(fo_argmax)(t, C)];
                size_t above = 0;
                for (size_t j = 0; j < C; j++)
                    above += p[j] > pt;
                v = pt == pt && above < m[i].k;
                break;
            }
            case FO_METRIC_R2:
                for (size_t j = 0; j < C; j++) {
                    const double yt = (double)t[j], e = (double)p[j] - yt;
                    a[j] += wb * yt;
                    a[C + j] += wb * yt * yt;
                    a[2 * C + j] += wb * e * e;
                    a[3 * C + j] += wb;
                }
                a[4 * C] += wb != 0;
                a += size;
                continue;
            default:
                a += size;
                continue;
            }
            a[0] += wb * v;
            a[1] += wb;
            a += size;
        }
    }
}

#undef FO_FN
#undef FO_CAT
#undef FO_CAT_
