/*
 * bs_app_model with the int8 engine (firmware/nn) and the model `bowlsense export` generated
 * (bs_model.h, bs_model_graph.c in build/firmware/model). See bs_app_model.h.
 */
#include "bs_app_model.h"

#include "bs_model.h"
#include "bs_nn.h"

static uint8_t arena[BS_MODEL_ARENA_BYTES] __attribute__((aligned(BS_NN_ARENA_ALIGN)));
static bs_events_params params;
static int32_t ready;

typedef char bs_app_model_labels_fit[((int)BS_MODEL_NUM_LABELS <= (int)BS_EVENTS_MAX_LABELS &&
                                      (int)BS_MODEL_OUTPUT_SIZE == (int)BS_MODEL_NUM_LABELS) ? 1 : -1];
typedef char bs_app_model_input_is_a_patch[((int)BS_MODEL_INPUT_SIZE == 96 * (int)BS_FRONTEND_NUM_MEL) ? 1 : -1];

int32_t bs_app_model_init(void)
{
    ready = 0;
    if (bs_nn_check(&bs_model_graph, arena, sizeof arena) != BS_NN_OK ||
        bs_nn_input_size(&bs_model_graph) != BS_MODEL_INPUT_SIZE ||
        bs_nn_output_size(&bs_model_graph) != BS_MODEL_OUTPUT_SIZE || (int)BS_MODEL_SMOOTHING_WINDOWS < 1 ||
        (int)BS_MODEL_SMOOTHING_WINDOWS > (int)BS_EVENTS_MAX_WINDOWS || (int)BS_MODEL_MIN_EVENT_WINDOWS < 1) {
        return -1;
    }
    params.num_labels = BS_MODEL_NUM_LABELS;
    params.windows = BS_MODEL_SMOOTHING_WINDOWS;
    params.min_event_windows = BS_MODEL_MIN_EVENT_WINDOWS;
    for (uint32_t l = 0; l < BS_MODEL_NUM_LABELS; ++l) {
        /* model.json's rule on the moving average, precomputed by the export as integer sum thresholds */
        params.label[l].on_sum = bs_model_threshold_on_sum[l];
        params.label[l].off_sum = bs_model_threshold_off_sum[l];
        /* the privacy gate uses the lower (off) level on each raw window score: stricter than on */
        params.label[l].gate_q = bs_model_threshold_off_q[l];
        params.label[l].privacy = bs_model_privacy[l];
    }
    ready = 1;
    return 0;
}

int32_t bs_app_model_present(void)
{
    return ready;
}

const bs_events_params *bs_app_model_params(void)
{
    return &params;
}

const char *bs_app_model_label(uint32_t index)
{
    return index < BS_MODEL_NUM_LABELS ? bs_model_labels[index] : "";
}

const char *bs_app_model_sha256(void)
{
    return BS_MODEL_TFLITE_SHA256;
}

const char *bs_app_model_frontend_hash(void)
{
    return bs_model_frontend_hash;
}

void bs_app_model_quantize(const int16_t *frame_q10, int8_t *out, uint32_t n)
{
    /* TFLite QUANTIZE as the host computes it (bowlsense.train.features.quantize_input): float32
     * x = v / 1024 / scale, q = sign(x) * floor(|x| + 0.5) + zero_point, clamped. v / 1024 is exact in
     * float32 and IEEE division/addition round the same on every FPU and soft-float library. */
    const float scale = bs_model_input_scale;
    for (uint32_t i = 0; i < n; ++i) {
        float x = ((float)frame_q10[i] * (1.0f / 1024.0f)) / scale;
        float a = x < 0.0f ? -x : x;
        int32_t q;
        if (a >= 512.0f) {
            q = x < 0.0f ? -512 : 512; /* far outside int8 either way; avoids int overflow */
        } else {
            float r = a + 0.5f;
            int32_t m = (int32_t)r; /* r >= 0.5: truncation is floor */
            q = x < 0.0f ? -m : m;
        }
        q += BS_MODEL_INPUT_ZERO_POINT;
        out[i] = (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));
    }
}

int32_t bs_app_model_infer(const int8_t (*ring)[BS_FRONTEND_NUM_MEL], uint32_t oldest, int8_t *scores)
{
    if (!ready) {
        return -1;
    }
    int8_t *in = bs_nn_input(&bs_model_graph, arena);
    for (uint32_t r = 0; r < 96u; ++r) {
        const int8_t *row = ring[(oldest + r) % 96u];
        for (uint32_t k = 0; k < BS_FRONTEND_NUM_MEL; ++k) {
            in[r * BS_FRONTEND_NUM_MEL + k] = row[k];
        }
    }
    return bs_nn_invoke(&bs_model_graph, arena, sizeof arena, NULL, scores) == BS_NN_OK ? 0 : -2;
}

uint32_t bs_app_model_arena_bytes(void)
{
    return BS_MODEL_ARENA_BYTES;
}
