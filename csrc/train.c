/* train.c - the fused training loop: shuffle, forward, MSE backprop and the
 * optimizer update for every mini-batch of an epoch, in one C call. */
#include <math.h>
#include <string.h>

#include "fastopt.h"

size_t fo_net_kernel_offset(const fo_net *net, size_t l)
{
    size_t off = 0;
    for (size_t i = 0; i < l; i++)
        off += net->units[i] * net->units[i + 1] + (net->use_bias[i] ? net->units[i + 1] : 0);
    return off;
}

size_t fo_net_bias_offset(const fo_net *net, size_t l)
{
    return fo_net_kernel_offset(net, l) + net->units[l] * net->units[l + 1];
}

size_t fo_net_n_params(const fo_net *net)
{
    return fo_net_kernel_offset(net, net->n_layers);
}

static size_t fo_net_widest(const fo_net *net)
{
    size_t widest = 0;
    for (size_t l = 1; l <= net->n_layers; l++)
        widest = net->units[l] > widest ? net->units[l] : widest;
    return widest;
}

size_t fo_net_workspace(const fo_net *net, size_t B)
{
    size_t total = 2 * fo_net_widest(net) + net->units[0] + net->units[net->n_layers];
    for (size_t l = 1; l <= net->n_layers; l++)
        total += net->units[l];
    return total * B;
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
