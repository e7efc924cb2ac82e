/*
 * The numeric steps of the forward pass, on plain float arrays. Each is a
 * small function with a fixed order of operations, so that the same inputs
 * give bit-identical outputs however the caller batches tokens.
 */
#ifndef MF_OPS_H
#define MF_OPS_H

#include <stddef.h>
#include <stdint.h>

/* out[i] = w[i] * x[i] / sqrt(mean(x^2) + eps) (sum of squares in double).
 * w may be NULL (weight 1). out may equal x. */
void mf_rmsnorm(float *out, const float *x, const float *w, uint32_t n, float eps);

/* e^x in float arithmetic only (range reduction and a polynomial), the same
 * bits on every target; max error 1.02 ulp, 0 below -104, +inf above 88.8,
 * NaN for NaN. The softmax, SiLU and sigmoid use it. */
float mf_expf(float x);

/* In-place softmax over x[n] (max subtracted, sum in double). */
void mf_softmax(float *x, uint32_t n);

/* x / (1 + exp(-x)) and 1 / (1 + exp(-x)). */
float mf_silu(float x);
/* g[i] = silu(g[i]) * u[i] (SwiGLU), with mf_silu's bits. */
void mf_silu_mul(float *g, const float *u, size_t n);
float mf_sigmoid(float x);

/* cos/sin of position pos for the head_dim/2 frequencies
 * inv_freq[i] = theta^(-2i/head_dim), computed in double. */
void mf_rope_table(float *cosv, float *sinv, uint32_t pos, uint32_t head_dim, float theta);
/* The same in two steps, so that a model computes inv_freq once
 * (head_dim/2 floats) and the angles once per position, not per layer:
 * without a double-precision FPU (Cortex-M) pow/cos/sin are software. */
void mf_rope_inv_freq(float *inv, uint32_t head_dim, float theta);
void mf_rope_angles(float *cosv, float *sinv, uint32_t pos, uint32_t half, const float *inv);
/* Rotates n_heads heads of head_dim values in place, HF rotate_half
 * convention: pairs (i, i + head_dim/2). */
void mf_rope_apply(float *x, uint32_t n_heads, uint32_t head_dim, const float *cosv,
                   const float *sinv);

/* Dot product of two float vectors with eight interleaved partial sums
 * combined in a fixed order (the order the matmul kernels use too). */
float mf_dot_f32(const float *a, const float *b, uint32_t n);

/* Y[t][r] = W[r] . X[t] for t < n_tok: X is [n_tok][cols] (row stride
 * x_stride floats), Y is [n_tok][rows] (stride y_stride). W is encoded with
 * `enc` (runtime/quant.h). For every (t, r) the arithmetic does not depend on
 * n_tok, so batching tokens never changes a result. */
void mf_matmul(int enc, const void *w, uint32_t rows, uint32_t cols, uint32_t group,
               const float *x, size_t x_stride, float *y, size_t y_stride, uint32_t n_tok);

/* The same with int8 activations for quantised weights (Q8..Q2): when qa
 * is not NULL (a buffer of mf_qa_bytes(cols, group) bytes, 4-byte aligned),
 * each token's row of X is quantised per group (mf_quantize_activations)
 * and multiplied by the integer kernels (mf_matvec_qa, SIMD where the
 * target has it). Float encodings, or qa == NULL, behave as mf_matmul. */
void mf_matmul_ex(int enc, const void *w, uint32_t rows, uint32_t cols, uint32_t group,
                  const float *x, size_t x_stride, float *y, size_t y_stride, uint32_t n_tok,
                  void *qa);

/* One X through several matrices of the same encoding and width (q, k, v;
 * an expert's gate and up): each token's row is quantised once for all of
 * them. Every Y is exactly what mf_matmul_ex would give for its matrix. */
typedef struct {
    const void *w;
    uint32_t rows;
    float *y;
    size_t y_stride;
} mf_matmul_job;
void mf_matmul_shared(int enc, uint32_t cols, uint32_t group, const float *x, size_t x_stride,
                      uint32_t n_tok, void *qa, const mf_matmul_job *jobs, uint32_t n_jobs);

/* Causal attention of one query head over positions [0, n_pos):
 * out[head_dim] = sum_t softmax(q . k_t / sqrt(head_dim)) v_t, where k_t and
 * v_t are at k + t*kv_stride and v + t*kv_stride. att needs n_pos floats.
 * Each score has mf_dot_f32's order of operations. */
void mf_attention_head(float *out, const float *q, const float *k, const float *v,
                       size_t kv_stride, uint32_t n_pos, uint32_t head_dim, float *att);

/* The same over a KV cache stored as q8, f16 or bf16 (enc, runtime/quant.h):
 * row t of K is k + t*kv_stride elements (int8 for q8, else 16-bit), for q8
 * with the f16 scale k_scale[t*kv_stride/head_dim] (one per head_dim
 * values); V likewise. Each row is widened to f32 (q8: int8 x scale, one
 * rounding; f16 and bf16 exactly), then the arithmetic of
 * mf_attention_head. row needs head_dim floats of scratch, att n_pos. */
void mf_attention_head_kv(float *out, const float *q, int enc, const void *k, const void *v,
                          const uint16_t *k_scale, const uint16_t *v_scale, size_t kv_stride,
                          uint32_t n_pos, uint32_t head_dim, float *row, float *att);

/* Indices of the k largest of x[n], largest first; ties go to the lower
 * index (as torch.topk on CPU). k <= n. */
void mf_topk(const float *x, uint32_t n, uint32_t k, uint32_t *idx);

#endif
