/* Loss surfaces of small MLPs on a plane, fused: one pass per block of samples, no tensors.
 *
 * Compiled and loaded by core/native.py (ctypes; the GIL is released while it runs) and driven
 * by core/landscape_fused.py, whose docstring says what is computed and why. In short: for each
 * plane point (α, β) and each block of BLOCK samples,
 *
 *   h_0 = act(M_θ + α·M_1 + β·M_2)                  the first layer from three precomputed maps
 *   h_l = act(W_l(α,β)·h_{l−1} + b_l(α,β))          W_l(α,β) = W_θ + α·W_1 + β·W_2, per point
 *   loss = softplus(±margin) | logsumexp − z_y | Σ (z − t)²
 *
 * with every activation of the block in two small buffers that stay in the core's L1 cache.
 * Plain C11 with the GCC/Clang vector extension (8 floats per vector): the same source builds
 * for AVX2 + FMA with -march=native, or for SSE where that is all there is.
 *
 * Samples are laid out feature-major, (features, n_padded), with n padded by the caller to a
 * multiple of BLOCK: every dense product works on whole blocks, and the padding's losses are
 * never added up. Each point's loss sum is accumulated in double.
 */

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 64                 /* samples per block: 8 vectors of 8 */
#define VECTORS (BLOCK / 8)

typedef float v8 __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

enum { ACT_IDENTITY, ACT_RELU, ACT_LEAKY, ACT_TANH, ACT_SIGMOID };
enum { LOSS_MARGIN_CE, LOSS_CE, LOSS_MSE };

static inline v8 load(const float *p) { v8 v; memcpy(&v, p, sizeof v); return v; }
static inline void store(float *p, v8 v) { memcpy(p, &v, sizeof v); }
static inline v8 splat(float s) { return (v8){s, s, s, s, s, s, s, s}; }

/* ----------------------------------------------------------------------------------------
 * Scalar float32 exp and log, written so that a loop over a block vectorises (no libm call,
 * no branch): Cephes expf and a short atanh series for log, ~1 ulp. */

static inline float bits_to_float(int32_t i) { float f; memcpy(&f, &i, sizeof f); return f; }
static inline int32_t float_to_bits(float f) { int32_t i; memcpy(&i, &f, sizeof i); return i; }

/* e^c for c in [−87, 88.72] as e^r · 2^k, k = round(c / ln 2), |r| ≤ ln 2 / 2 (Cephes expf):
 * returns e^r and sets *k. */
static inline float exp_reduced(float c, float *k_out)
{
    float k = floorf(c * 1.44269504088896341f + 0.5f);
    float r = c - k * 0.693359375f - k * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    *k_out = k;
    return p * r * r + r + 1.0f;
}

/* e^x: 0 below −87, inf above 88.72, NaN kept. */
static inline float exp32(float x)
{
    float c = x > -87.0f ? x : -87.0f;    /* NaN → −87: restored at the end */
    c = c < 88.72f ? c : 88.72f;
    float k;
    float y = exp_reduced(c, &k);
    int32_t n = (int32_t)k, half = n >> 1;  /* 2^k as two normal factors */
    y = y * bits_to_float((half + 127) << 23);
    y = y * bits_to_float((n - half + 127) << 23);
    y = x < 88.72f ? y : INFINITY;
    y = x > -87.0f ? y : 0.0f;
    return x == x ? y : x;
}

/* log(v) for v ≥ 1 (all the losses need: Σ e^(z − max) and 1 + e^−|m|); inf and NaN kept. */
static inline float log32(float v)
{
    int32_t bits = float_to_bits(v);
    float exponent = (float)(((bits >> 23) & 0xFF) - 127);
    float mantissa = bits_to_float((bits & 0x7FFFFF) | 0x3F800000);  /* in [1, 2) */
    int big = mantissa > 1.41421356f;
    mantissa = big ? mantissa * 0.5f : mantissa;
    exponent = big ? exponent + 1.0f : exponent;
    float s = (mantissa - 1.0f) / (mantissa + 1.0f);  /* |s| ≤ 0.172 */
    float s2 = s * s;
    float p = 1.0f / 9.0f;
    p = p * s2 + 1.0f / 7.0f;
    p = p * s2 + 1.0f / 5.0f;
    p = p * s2 + 1.0f / 3.0f;
    p = p * s2 + 1.0f;
    float y = exponent * 0.693147180559945f + 2.0f * s * p;
    return v < INFINITY ? y : v;
}

/* log(1 + e^−a) for a ≥ 0 (or NaN): the softplus of cross entropy without its max(v, 0).
 * e^−a with `exp_reduced` but one scale factor (k ≤ 0 keeps 2^k normal down to −87), and
 * log1p(t) = 2·atanh(t / (2 + t)), t in (0, 1], u ≤ 1/3, by its series to u^15: accurate for
 * tiny t too, where log(1 + t) would round 1 + t. NaN in, NaN out (through the max term). */
static inline float log1p_exp_neg(float a)
{
    float c = a < 87.0f ? a : 87.0f, k;
    float t = exp_reduced(-c, &k);
    t = t * bits_to_float(((int32_t)k + 127) << 23);
    float u = t / (2.0f + t), u2 = u * u;
    float q = 1.0f / 15.0f;
    q = q * u2 + 1.0f / 13.0f;
    q = q * u2 + 1.0f / 11.0f;
    q = q * u2 + 1.0f / 9.0f;
    q = q * u2 + 1.0f / 7.0f;
    q = q * u2 + 1.0f / 5.0f;
    q = q * u2 + 1.0f / 3.0f;
    q = q * u2 + 1.0f;
    return 2.0f * u * q;
}

/* The activation on one block row, in place. ReLU keeps NaN, as torch's does. */
static void activate(float *row, int code, float slope)
{
    switch (code) {
    case ACT_RELU:
        for (int s = 0; s < BLOCK; s++) row[s] = row[s] < 0.0f ? 0.0f : row[s];
        break;
    case ACT_LEAKY:
        for (int s = 0; s < BLOCK; s++) row[s] = row[s] < 0.0f ? row[s] * slope : row[s];
        break;
    case ACT_TANH:
        for (int s = 0; s < BLOCK; s++) {
            float v = row[s], a = v < 0.0f ? -v : v;
            float e = exp32(-2.0f * a);
            float t = (1.0f - e) / (1.0f + e);
            row[s] = v < 0.0f ? -t : (v == v ? t : v);
        }
        break;
    case ACT_SIGMOID:
        for (int s = 0; s < BLOCK; s++) row[s] = 1.0f / (1.0f + exp32(-row[s]));
        break;
    default:
        break;
    }
}

/* ReLU and leaky ReLU on a vector of accumulators before it is stored (others: `activate`
 * after the layer). A comparison gives a lane mask; NaN < 0 is false, so NaN is kept. */
static inline v8 piecewise(v8 a, int code, float slope)
{
    if (code == ACT_RELU) {
        v8i negative = a < splat(0.0f);
        return (v8)((v8i)a & ~negative);
    }
    if (code == ACT_LEAKY) {
        v8i negative = a < splat(0.0f);
        return (v8)(((v8i)(a * splat(slope)) & negative) | ((v8i)a & ~negative));
    }
    return a;
}

/* h_out[r] = act(bias[r] + Σ_j w[r·n_in + j]·h_in[j]) for one block.
 *
 * Four output rows × two sample vectors per pass: 8 accumulators in registers, and per input
 * two vector loads and four broadcasts for eight fused multiply-adds. Rows left over are done
 * one at a time across the whole block (8 accumulators again: the margin layer is one row). */
static void dense(const float *w, const float *bias, int n_in, int n_out, const float *h_in,
                  float *h_out, int act, float slope)
{
    int r = 0;
    for (; r + 4 <= n_out; r += 4) {
        const float *w0 = w + (size_t)r * n_in, *w1 = w0 + n_in, *w2 = w1 + n_in, *w3 = w2 + n_in;
        for (int v = 0; v < VECTORS; v += 2) {
            v8 a00 = splat(bias[r]), a01 = a00, a10 = splat(bias[r + 1]), a11 = a10;
            v8 a20 = splat(bias[r + 2]), a21 = a20, a30 = splat(bias[r + 3]), a31 = a30;
            const float *x = h_in + v * 8;
            for (int j = 0; j < n_in; j++, x += BLOCK) {
                v8 x0 = load(x), x1 = load(x + 8);
                v8 c0 = splat(w0[j]), c1 = splat(w1[j]), c2 = splat(w2[j]), c3 = splat(w3[j]);
                a00 += c0 * x0; a01 += c0 * x1;
                a10 += c1 * x0; a11 += c1 * x1;
                a20 += c2 * x0; a21 += c2 * x1;
                a30 += c3 * x0; a31 += c3 * x1;
            }
            float *o = h_out + (size_t)r * BLOCK + v * 8;
            store(o, piecewise(a00, act, slope)); store(o + 8, piecewise(a01, act, slope));
            store(o + BLOCK, piecewise(a10, act, slope));
            store(o + BLOCK + 8, piecewise(a11, act, slope));
            store(o + 2 * BLOCK, piecewise(a20, act, slope));
            store(o + 2 * BLOCK + 8, piecewise(a21, act, slope));
            store(o + 3 * BLOCK, piecewise(a30, act, slope));
            store(o + 3 * BLOCK + 8, piecewise(a31, act, slope));
        }
    }
    for (; r < n_out; r++) {
        const float *wr = w + (size_t)r * n_in;
        v8 acc[VECTORS];
        for (int v = 0; v < VECTORS; v++) acc[v] = splat(bias[r]);
        const float *x = h_in;
        for (int j = 0; j < n_in; j++, x += BLOCK) {
            v8 c = splat(wr[j]);
            for (int v = 0; v < VECTORS; v++) acc[v] += c * load(x + v * 8);
        }
        for (int v = 0; v < VECTORS; v++)
            store(h_out + (size_t)r * BLOCK + v * 8, piecewise(acc[v], act, slope));
    }
    if (act == ACT_TANH || act == ACT_SIGMOID)
        for (int q = 0; q < n_out; q++) activate(h_out + (size_t)q * BLOCK, act, slope);
}

/* Σ over the block's first m samples of the loss, given its logits z (rows × BLOCK). */
static double block_loss(const float *z, int rows, int m, int kind, const int32_t *labels,
                         const float *signs, const float *targets, size_t target_stride,
                         float *scratch)
{
    float *loss = scratch, *sum_exp = scratch + BLOCK, *true_logit = scratch + 2 * BLOCK;
    if (kind == LOSS_MARGIN_CE) {
        /* Two-class CE = softplus(z_other − z_true) = softplus(sign·(z1 − z0)). */
        for (int s = 0; s < BLOCK; s++) {
            float v = signs[s] * z[s];
            float a = v < 0.0f ? -v : v;
            loss[s] = (v < 0.0f ? 0.0f : v) + log1p_exp_neg(a);
        }
    } else if (kind == LOSS_CE) {
        for (int s = 0; s < BLOCK; s++) loss[s] = z[s];
        for (int c = 1; c < rows; c++)
            for (int s = 0; s < BLOCK; s++) {
                float v = z[(size_t)c * BLOCK + s];
                loss[s] = v > loss[s] ? v : loss[s];  /* the max logit */
            }
        for (int s = 0; s < BLOCK; s++) sum_exp[s] = 0.0f, true_logit[s] = 0.0f;
        for (int c = 0; c < rows; c++)
            for (int s = 0; s < BLOCK; s++) {
                float v = z[(size_t)c * BLOCK + s];
                sum_exp[s] += exp32(v - loss[s]);
                true_logit[s] = labels[s] == c ? v : true_logit[s];
            }
        for (int s = 0; s < BLOCK; s++) loss[s] = loss[s] + log32(sum_exp[s]) - true_logit[s];
    } else {
        for (int s = 0; s < BLOCK; s++) loss[s] = 0.0f;
        for (int c = 0; c < rows; c++)
            for (int s = 0; s < BLOCK; s++) {
                float d = z[(size_t)c * BLOCK + s] - targets[c * target_stride + s];
                loss[s] += d * d;
            }
    }
    /* Eight partial sums in double: independent chains and a fixed order. */
    double part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int s = 0;
    for (; s + 8 <= m; s += 8)
        for (int q = 0; q < 8; q++) part[q] += loss[s + q];
    for (; s < m; s++) part[0] += loss[s];
    return ((part[0] + part[1]) + (part[2] + part[3]))
           + ((part[4] + part[5]) + (part[6] + part[7]));
}

/* Mean loss at each of the k plane points coeffs (k, 2) = (α, β); writes out (k,).
 *
 * layers: linear layers, widths[l] their output rows (the margin layer: 1); maps (3, widths[0],
 * n_padded); the later layers' weights at θ, d1, d2 in weight_basis (3, n_weights), layer l's
 * (widths[l], widths[l−1]) matrix at weight_offsets[l − 1], its bias at bias_offsets[l − 1] in
 * bias_basis (3, n_biases); activations / slopes: what follows each linear layer; labels (n_padded)
 * for cross entropy, signs (n_padded) for the margin, targets (widths[last], n_padded) for MSE.
 * Returns 0, or −1 when scratch memory could not be allocated. */
int plane_losses(int64_t k, const float *coeffs, int64_t n, int64_t n_padded, int64_t layers,
                 const int64_t *widths, const float *maps, const float *weight_basis,
                 int64_t n_weights, const float *bias_basis, int64_t n_biases,
                 const int64_t *weight_offsets, const int64_t *bias_offsets,
                 const int32_t *activations, const float *slopes, int32_t loss_kind,
                 const int32_t *labels, const float *signs, const float *targets, double *out)
{
    int64_t widest = 1;
    for (int64_t l = 0; l < layers; l++) widest = widths[l] > widest ? widths[l] : widest;
    size_t buffer = (size_t)widest * BLOCK;
    size_t total = 2 * buffer + 3 * BLOCK + (size_t)n_weights + (size_t)n_biases + 16;
    float *memory = aligned_alloc(64, ((total * sizeof(float) + 63) / 64) * 64);
    if (memory == NULL) return -1;
    float *h_a = memory, *h_b = h_a + buffer, *scratch = h_b + buffer;
    float *point_w = scratch + 3 * BLOCK, *point_b = point_w + n_weights;
    int64_t first_rows = widths[0], last = layers - 1;
    size_t map_plane = (size_t)first_rows * n_padded;

    for (int64_t p = 0; p < k; p++) {
        float alpha = coeffs[2 * p], beta = coeffs[2 * p + 1];
        /* The point's own weights, θ + α·d1 + β·d2, for every layer after the first. (Blocks
         * outer and points inner, to read each block's maps from L1, measured no faster.) */
        for (int64_t q = 0; q < n_weights; q++)
            point_w[q] = weight_basis[q] + alpha * weight_basis[n_weights + q]
                         + beta * weight_basis[2 * n_weights + q];
        for (int64_t q = 0; q < n_biases; q++)
            point_b[q] = bias_basis[q] + alpha * bias_basis[n_biases + q]
                         + beta * bias_basis[2 * n_biases + q];
        double sum = 0.0;
        for (int64_t start = 0; start < n; start += BLOCK) {
            for (int64_t j = 0; j < first_rows; j++) {
                const float *m0 = maps + (size_t)j * n_padded + start;
                const float *m1 = m0 + map_plane, *m2 = m1 + map_plane;
                float *row = h_a + (size_t)j * BLOCK;
                for (int s = 0; s < BLOCK; s++) row[s] = m0[s] + alpha * m1[s] + beta * m2[s];
                activate(row, activations[0], slopes[0]);
            }
            float *h_in = h_a, *h_out = h_b;
            for (int64_t l = 1; l < layers; l++) {
                dense(point_w + weight_offsets[l - 1], point_b + bias_offsets[l - 1],
                      (int)widths[l - 1], (int)widths[l], h_in, h_out, activations[l], slopes[l]);
                float *swap = h_in; h_in = h_out; h_out = swap;
            }
            int m = n - start < BLOCK ? (int)(n - start) : BLOCK;
            sum += block_loss(h_in, (int)widths[last], m, loss_kind, labels + start,
                              signs + start, targets + start, (size_t)n_padded, scratch);
        }
        out[p] = sum / (double)(n * (loss_kind == LOSS_MSE ? widths[last] : 1));
    }
    free(memory);
    return 0;
}
