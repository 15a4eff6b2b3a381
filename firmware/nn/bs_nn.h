/*
 * bs_nn: int8 inference engine whose results are bit-identical to TensorFlow Lite Micro's reference
 * kernels (TFLite int8 quantization spec: per-channel int8 weights, int32 bias, Q31 fixed-point
 * requantization with gemmlowp rounding).
 *
 * The model is a const bs_nn_graph generated on the host by `bowlsense export` (see README.md in this
 * folder): weights already laid out for these kernels, input zero point folded into the biases,
 * multipliers/shifts and lookup tables precomputed, and a static memory plan that places every
 * activation tensor at a fixed byte offset in one caller-provided arena. The runtime never
 * allocates, never prints, and only fails on misuse (checked by bs_nn_check / bs_nn_invoke).
 *
 *   static uint8_t arena[BS_MODEL_ARENA_BYTES] __attribute__((aligned(16)));
 *   if (bs_nn_check(&bs_model_graph, arena, sizeof arena) != BS_NN_OK) ...;
 *   bs_nn_invoke(&bs_model_graph, arena, sizeof arena, features_int8, scores_int8);
 *
 * All tensors are int8, batch 1, NHWC; lower-rank tensors are stored with leading dimensions of 1
 * (a [1, N] fully-connected output is n=1, h=1, w=1, c=N).
 */
#ifndef BS_NN_H
#define BS_NN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the bs_nn_graph layout. Generated graphs carry the version they were written for;
 * bs_nn_check refuses any other. */
enum { BS_NN_GRAPH_VERSION = 2 };

/* The arena must start on this boundary (bytes); every tensor offset in a plan is a multiple of it. */
enum { BS_NN_ARENA_ALIGN = 16 };

/* One status enum for the library: 0 is success, negatives are errors. */
typedef enum {
    BS_NN_OK = 0,
    BS_NN_ERR_NULL = -1,     /* a required pointer was NULL */
    BS_NN_ERR_VERSION = -2,  /* graph generated for another BS_NN_GRAPH_VERSION */
    BS_NN_ERR_ARENA = -3,    /* arena smaller than graph->arena_bytes or not BS_NN_ARENA_ALIGN aligned */
    BS_NN_ERR_OP = -4,       /* a layer has an op code this engine does not know */
    BS_NN_ERR_GRAPH = -5     /* inconsistent graph: tensor index, shape or offset out of range */
} bs_nn_status;

/* Layer kinds. LOGISTIC and int8->int8 QUANTIZE are both lowered by export to BS_NN_OP_LUT_S8 (a
 * 256-entry table computed on the host with TFLite's fixed-point arithmetic). Float QUANTIZE and
 * DEQUANTIZE at the model's edges are not run here: see README.md. */
typedef enum {
    BS_NN_OP_CONV_2D_S8 = 1,
    BS_NN_OP_DEPTHWISE_CONV_2D_S8 = 2,
    BS_NN_OP_FULLY_CONNECTED_S8 = 3,
    BS_NN_OP_MEAN_S8 = 4,            /* mean over H and W (keep_dims or not) */
    BS_NN_OP_AVERAGE_POOL_2D_S8 = 5,
    BS_NN_OP_MAX_POOL_2D_S8 = 6,
    BS_NN_OP_ADD_S8 = 7,
    BS_NN_OP_RESHAPE = 8,            /* a copy; export plans it in place (a no-op) where it can */
    BS_NN_OP_LUT_S8 = 9,             /* out[i] = lut[in[i] + 128] */
    BS_NN_OP_SOFTMAX_S8 = 10         /* over the last (C) dimension */
} bs_nn_op;

/* An int8 activation tensor: where it lives in the arena and its NHWC shape. */
typedef struct {
    uint32_t offset;       /* byte offset in the arena, multiple of BS_NN_ARENA_ALIGN */
    int32_t h, w, c;       /* shape [1, h, w, c]; element count h * w * c */
    int32_t zero_point;    /* int8 zero point, -128..127 (informational: kernels use the folded values) */
} bs_nn_tensor;

/*
 * One layer. Which fields an op reads (others are 0 / NULL):
 *
 * In place: the memory plan may give a layer's output the same offset as its input. Kernels handle
 * that for LUT_S8, ADD_S8, RESHAPE, a 1x1 stride-1 CONV_2D (one pixel at a time through a stack
 * buffer) and a DEPTHWISE_CONV_2D (multiplier 1) whose output rows only overwrite input rows it has
 * already read (stride 1 same shape, the usual stride 2), which then needs `scratch`: a tensor of
 * kernel_h input rows (h = kernel_h, w = input w, c = input c) holding the rows under the filter.
 *
 * Fused: a CONV_2D_S8 with fused = 1 is followed by a DEPTHWISE_CONV_2D_S8 that is its output's only
 * reader. The depthwise layer computes the rows it needs of the convolution's output on demand into its
 * `scratch` ring (kernel_h rows of that tensor), so the convolution's output tensor never exists in full
 * and has no arena space.
 *
 * CONV_2D / DEPTHWISE_CONV_2D:
 *   kernel_h/w, stride_h/w, dilation_h/w, pad_top/left (TFLite SAME/VALID resolved to explicit
 *   offsets), depth_multiplier (depthwise), input_offset (= -input zero point, used at the padded
 *   border), output_offset (= output zero point), act_min/act_max (fused activation, int8 domain).
 *   weights: conv [cout][kh][kw][cin] (TFLite OHWI); depthwise [kh][kw][cout] (TFLite's layout, so
 *   one tap of all channels is contiguous). bias[cout]: int32 bias + input_offset * sum(weights of channel),
 *   so kernels accumulate raw int8 products. multiplier[cout] (Q31) and shift[cout] (>0: left).
 *   weights16 (CONV_2D with filters of K = kh*kw*cin <= 256 taps): the same values as int16, K padded with zeros to kp = K rounded up to a multiple of 4; per pair of output
 *   channels (2j, 2j+1) a block of 2*kp values, per group of 4 taps t0..t3 of the OHWI filter:
 *   a_t0, a_t2, a_t1, a_t3, b_t0, b_t2, b_t1, b_t3 (a = channel 2j, b = 2j+1): the order SXTB16 gives an
 *   input word, so each 32-bit weight word feeds one SMLAD. An odd last channel: a_t0, a_t2, a_t1, a_t3.
 *   DEPTHWISE_CONV_2D (multiplier 1, cout a multiple of 4) may have weights16 too: per group of 4 channels
 *   c0..c3 and per tap t, w_t(c0), w_t(c2), w_t(c1), w_t(c3). A layer may carry weights, weights16 or both:
 *   the Cortex-M DSP kernels read weights16, the portable kernels weights when present (bowlsense export
 *   writes weights16 alone where a layer has it; the host Engine keeps both).
 *   requant (optional, conv and depthwise): per output channel 4 int32 {m, r-1, K_lo, K_hi}, present when
 *   every channel shifts right by r in 1..20; out = clamp((acc*m + K - [acc<0]*2^31) >> (31 + r)), with
 *   K = 2^30 + 2^(30+r) + output_offset*2^(31+r) (64-bit): TFLite's double rounding and the output
 *   offset in one SMLAL (derivation in bowlsense.nn.fixedpoint.requant_table).
 * FULLY_CONNECTED: weights [cout][cin]; bias, multiplier, shift per cout as above (a per-tensor
 *   model repeats its one multiplier); output_offset, act_min/max.
 * MEAN: input_offset (= -input zero point), output_offset, output_multiplier/output_shift: TFLite's
 *   input/output rescale with 1/count folded in as its reference QuantizedMeanOrSum does it.
 * AVERAGE_POOL_2D / MAX_POOL_2D: kernel_h/w, stride_h/w, pad_top/left, act_min/max.
 * ADD: input2; input_offset/input2_offset (= -zero points), left_shift, input_multiplier/shift,
 *   input2_multiplier/shift, output_multiplier/shift, output_offset, act_min/max (TFLite's params).
 * RESHAPE: nothing; output has the same element count as input.
 * LUT_S8: lut (256 entries, indexed by input value + 128).
 * SOFTMAX: input_multiplier, input_shift (beta scaling as TFLite computes it), diff_min,
 *   exp_lut (256 int32 entries: exp of (x - max) for x - max in -255..0, indexed by max - x, raw
 *   fixed-point with 12 integer bits as TFLite's reference kernel accumulates them).
 */
typedef struct {
    int32_t op;                 /* bs_nn_op */
    int32_t input;              /* tensor index */
    int32_t input2;             /* second input (ADD), else -1 */
    int32_t output;             /* tensor index */
    int32_t source_index;       /* operator index in the .tflite, for messages and per-layer reports */
    int32_t scratch;            /* tensor index of the layer's scratch buffer, -1 if none (see below) */
    int32_t fused;              /* 1: a CONV_2D_S8 run inside the next layer (see below), else 0 */
    int32_t kernel_h, kernel_w;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_top, pad_left;
    int32_t depth_multiplier;
    int32_t act_min, act_max;   /* output clamp, int8 domain */
    int32_t input_offset;
    int32_t input2_offset;
    int32_t output_offset;
    int32_t left_shift;
    int32_t input_multiplier, input_shift;
    int32_t input2_multiplier, input2_shift;
    int32_t output_multiplier, output_shift;
    int32_t diff_min;
    const int8_t *weights;
    const int32_t *bias;
    const int32_t *multiplier;  /* per output channel, Q31 */
    const int32_t *shift;       /* per output channel, > 0 shifts left */
    const int8_t *lut;
    const int32_t *exp_lut;
    const int16_t *weights16;   /* CONV_2D packed weights (see above), or NULL */
    const int32_t *requant;     /* per-channel {m, r-1, K_lo, K_hi} (see above), or NULL */
} bs_nn_layer;

/* A whole model: tensors, layers in execution order, and the static memory plan. */
typedef struct {
    uint32_t version;           /* BS_NN_GRAPH_VERSION */
    uint32_t arena_bytes;       /* peak activation memory of the plan */
    int32_t num_tensors;
    const bs_nn_tensor *tensors;
    int32_t num_layers;
    const bs_nn_layer *layers;
    int32_t input_tensor;       /* index of the model's int8 input */
    int32_t output_tensor;      /* index of the model's int8 output */
} bs_nn_graph;

/* Optional per-layer hook (profiling: read a cycle counter). Called with finished = 0 before and
 * finished = 1 after layer `layer_index` runs. */
typedef void (*bs_nn_layer_hook)(void *user, int32_t layer_index, int32_t finished);

/* Validate a graph against an arena once at start-up: version, op codes, tensor indices, shapes and
 * that every tensor fits inside arena_size. arena may be NULL to check only the graph. */
bs_nn_status bs_nn_check(const bs_nn_graph *graph, const uint8_t *arena, uint32_t arena_size);

/* Run the model. input: element count of the input tensor, copied into the arena first; NULL when
 * the caller already wrote it at bs_nn_input(graph, arena). output: receives the output tensor;
 * NULL to leave it in the arena at bs_nn_output(graph, arena). arena contents are scratch between
 * calls. Returns BS_NN_OK, or the error bs_nn_check would give. */
bs_nn_status bs_nn_invoke(const bs_nn_graph *graph, uint8_t *arena, uint32_t arena_size,
                          const int8_t *input, int8_t *output);

/* bs_nn_invoke with a hook around every layer (hook may be NULL). */
bs_nn_status bs_nn_invoke_hooked(const bs_nn_graph *graph, uint8_t *arena, uint32_t arena_size,
                                 const int8_t *input, int8_t *output,
                                 bs_nn_layer_hook hook, void *user);

/* Where the input / output tensors live in the arena (NULL on a NULL argument or a bad index). */
int8_t *bs_nn_input(const bs_nn_graph *graph, uint8_t *arena);
int8_t *bs_nn_output(const bs_nn_graph *graph, uint8_t *arena);

/* Element counts of the input / output tensors (negative status on error). */
int32_t bs_nn_input_size(const bs_nn_graph *graph);
int32_t bs_nn_output_size(const bs_nn_graph *graph);

/* Multiply-accumulates of one layer (conv, depthwise, fully connected; 0 for others), for reports. */
uint32_t bs_nn_layer_macs(const bs_nn_graph *graph, int32_t layer_index);

/* A short constant name for a status ("ok", "arena too small or misaligned", ...). */
const char *bs_nn_status_name(bs_nn_status status);

#ifdef __cplusplus
}
#endif

#endif /* BS_NN_H */
