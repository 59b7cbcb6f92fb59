/* train.c - the network's layout and the fused training loop: shuffle,
 * forward, loss, backprop and the optimizer update of every mini-batch, in
 * one C call (train_impl.h, per dtype). */
#include <math.h>
#include <string.h>

#include "fastopt.h"

/* The layout of the flat buffer (Keras' get_weights() order), the workspace
 * per row and the chunk size: computed here and nowhere else. */
int fo_net_layout(fo_net *net)
{
    const size_t L = net->n_layers;
    if (L < 1 || L > FO_MAX_LAYERS)
        return -1;
    size_t off = 0, widest = 0, outputs = 0, k;
    for (size_t l = 0; l < L; l++) {
        const size_t out = net->units[l + 1];
        if (__builtin_mul_overflow(net->units[l], out, &k))
            return -1;
        net->kernel_off[l] = off;
        if (__builtin_add_overflow(off, k, &off))
            return -1;
        net->bias_off[l] = off;
        if (net->use_bias[l] && __builtin_add_overflow(off, out, &off))
            return -1;
        if (__builtin_add_overflow(outputs, out, &outputs))
            return -1;
        widest = out > widest ? out : widest;
    }
    net->n_params = off;
    net->widest = widest;
    /* a row of a chunk: every layer's output, its pre-activation where kept
     * (fo_net_keeps_z), its dropout mask and dropped output where it has
     * dropout, two gradient rows of the widest layer, the gathered x and y
     * rows and the sample weight */
    size_t row = outputs, t;
    for (size_t l = 0; l < L; l++) {
        const size_t out = net->units[l + 1];
        if (fo_net_keeps_z(net, l) && __builtin_add_overflow(row, out, &row))
            return -1;
        if (net->dropout[l] > 0 && (__builtin_add_overflow(row, out, &row) ||
                                    __builtin_add_overflow(row, out, &row)))
            return -1;
    }
    if (__builtin_mul_overflow(widest, (size_t)2, &t) || __builtin_add_overflow(row, t, &row) ||
        __builtin_add_overflow(row, net->units[0], &row) ||
        __builtin_add_overflow(row, net->units[L], &row) || __builtin_add_overflow(row, (size_t)1, &row))
        return -1;
    net->row_width = row;
    /* about 2^24 multiply-adds of forward work per chunk, 256 to 65536 rows:
     * small enough to hear an interrupt within a batch, large enough for BLAS */
    size_t per_row = off + outputs, chunk = ((size_t)1 << 24) / (per_row ? per_row : 1);
    net->chunk_rows = chunk < 256 ? 256 : chunk > 65536 ? 65536 : chunk;
    return 0;
}

int fo_net_keeps_z(const fo_net *net, size_t l)
{
    /* the last layer's always: a loss that fuses with its activation reads it */
    return l + 1 == net->n_layers || fo_act_needs_z(net->act[l]);
}

/* a batch of B rows into st: its error sums (errors), and its loss, the part
 * the rows gave plus the penalty (both times B); returns that batch loss */
double fo_add_stats(fo_stats *st, const fo_stats *errors, double loss, double penalty, size_t B)
{
    loss += penalty;
    st->sse += errors->sse;
    st->sae += errors->sae;
    st->penalty += penalty * (double)B;
    st->loss += loss * (double)B;
    return loss;
}

size_t fo_net_workspace(const fo_net *net, size_t B)
{
    const size_t R = B < net->chunk_rows ? B : net->chunk_rows;
    return R * net->row_width + (B > R ? net->n_params : 0);
}

/* splitmix64 seeds xoshiro256** (Blackman and Vigna) */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void fo_rng_seed(fo_rng *rng, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t fo_rng_next(fo_rng *rng)
{
    uint64_t *s = rng->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* uniform integer in [0, bound): Lemire's multiply-shift with rejection */
static uint64_t bounded(fo_rng *rng, uint64_t bound)
{
    unsigned __int128 m = (unsigned __int128)fo_rng_next(rng) * bound;
    uint64_t low = (uint64_t)m;
    if (low < bound) {
        const uint64_t threshold = (0 - bound) % bound;
        while (low < threshold) {
            m = (unsigned __int128)fo_rng_next(rng) * bound;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

void fo_shuffle(int64_t *perm, size_t n, fo_rng *rng)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)bounded(rng, i);
        int64_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

#define T float
#define S f32
#define FO_DTYPE FO_F32
#include "train_impl.h"
#undef T
#undef S
#undef FO_DTYPE

#define T double
#define S f64
#define FO_DTYPE FO_F64
#include "train_impl.h"
#undef T
#undef S
#undef FO_DTYPE
