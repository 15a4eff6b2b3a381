/* bs_app_model without a model: used until `bowlsense export` has produced one (see bs_app_model.h). */
#include "bs_app_model.h"

static const bs_events_params no_params = {0, 1, 1, {{0, 0, 0, 0}}};

int32_t bs_app_model_init(void)
{
    return 1;
}

int32_t bs_app_model_present(void)
{
    return 0;
}

const bs_events_params *bs_app_model_params(void)
{
    return &no_params;
}

const char *bs_app_model_label(uint32_t index)
{
    (void)index;
    return "";
}

const char *bs_app_model_sha256(void)
{
    return "";
}

const char *bs_app_model_frontend_hash(void)
{
    return "";
}

void bs_app_model_quantize(const int16_t *frame_q10, int8_t *out, uint32_t n)
{
    (void)frame_q10;
    for (uint32_t i = 0; i < n; ++i) {
        out[i] = 0;
    }
}

int32_t bs_app_model_infer(const int8_t (*ring)[BS_FRONTEND_NUM_MEL], uint32_t oldest, int8_t *scores)
{
    (void)ring;
    (void)oldest;
    (void)scores;
    return -1;
}

uint32_t bs_app_model_arena_bytes(void)
{
    return 0;
}
