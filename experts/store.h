/*
 * The expert store: the only way the forward pass gets expert weights.
 *
 *   const uint8_t *blob; int enc;
 *   rc = mf_store_get(s, layer, expert, &blob, &enc);  // pins the slot
 *   ... use gate/up/down inside blob ...
 *   mf_store_release(s, layer, expert);                 // unpins it
 *
 * A get() that misses reads the expert's blob from flash through the port
 * into a free RAM slot (least recently used unpinned slot), checks its CRC
 * as opt.verify_experts says, and counts bytes/hits/misses in mf_stats.
 * The contents of a slot are the bytes of the blob, so the result of the
 * forward pass never depends on how many slots there are.
 */
#ifndef MF_EXPERT_STORE_H
#define MF_EXPERT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "../port/port.h"
#include "../runtime/arena.h"
#include "../runtime/image.h"
#include "../runtime/moeflash.h"

typedef struct {
    int32_t layer, expert; /* -1 when empty */
    int encoding;
    uint32_t pins;
    uint64_t last_use;
    uint8_t *data;
} mf_store_slot;

typedef struct {
    const mf_port *port;
    const mf_image_header *h;
    uint32_t n_slots;
    size_t slot_bytes;     /* the largest expert blob, rounded up */
    mf_store_slot *slots;
    uint8_t *verified;     /* one bit per (layer, expert) for verify mode 2 */
    uint64_t tick;
    int verify;
    uint32_t max_retries;
    mf_stats *stats;
} mf_expert_store;

/* The largest expert blob in the image (bytes), for sizing slots. */
int mf_store_max_blob(const mf_port *port, const mf_image_header *h, size_t *bytes);

/* Lays the store out in the arena (counting when the arena counts).
 * n_slots >= 1. stats must outlive the store. */
int mf_store_init(mf_expert_store *s, mf_arena *a, const mf_port *port, const mf_image_header *h,
                  uint32_t n_slots, size_t max_blob, int verify, uint32_t max_retries,
                  mf_stats *stats);

/* The encoded blob of (layer, expert) in a RAM slot, pinned until release. */
int mf_store_get(mf_expert_store *s, uint32_t layer, uint32_t expert, const uint8_t **blob,
                 int *encoding);
void mf_store_release(mf_expert_store *s, uint32_t layer, uint32_t expert);

#endif
