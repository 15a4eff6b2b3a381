/*
 * bs_app_model: the application's one door to inference. Two implementations, chosen by the build:
 *   bs_app_model_nn.c    the int8 engine (firmware/nn) running the model `bowlsense export` generated
 *                        (bs_model.h, bs_model_graph.c)
 *   bs_app_model_none.c  no model exported yet: HELLO says so, INFER answers BS_ERR_NO_MODEL, and
 *                        STREAM runs the front end only
 */
#ifndef BS_APP_MODEL_H
#define BS_APP_MODEL_H

#include <stdint.h>

#include "bs_events.h"
#include "bs_frontend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Validate the graph against the arena once at boot. 0 when inference is available, 1 when the build
 * has no model, negative when the model is broken (the app then reports BS_ERR_INTERNAL). */
int32_t bs_app_model_init(void);

/* 1 when a model is linked and passed bs_app_model_init. */
int32_t bs_app_model_present(void);

/* Smoothing/hysteresis parameters and labels from the generated model header (num_labels 0 if none). */
const bs_events_params *bs_app_model_params(void);
const char *bs_app_model_label(uint32_t index);
const char *bs_app_model_sha256(void);   /* hex sha256 of model.tflite, "" without a model */
const char *bs_app_model_frontend_hash(void); /* front end hash the model was trained on, "" if none */

/* Input quantization (front end int16 Q10 -> the model's int8 input), applied to each frame as it enters
 * the ring, so a window's patch is quantized once per frame rather than twice. n values. */
void bs_app_model_quantize(const int16_t *frame_q10, int8_t *out, uint32_t n);

/* Run the model on 96 quantized rows stored in a ring (row `oldest` first). scores receives
 * num_labels raw int8 outputs. Returns 0, or a negative status (no model / engine error). */
int32_t bs_app_model_infer(const int8_t (*ring)[BS_FRONTEND_NUM_MEL], uint32_t oldest, int8_t *scores);

/* Activation arena bytes (static), 0 without a model. */
uint32_t bs_app_model_arena_bytes(void);

#ifdef __cplusplus
}
#endif

#endif /* BS_APP_MODEL_H */
