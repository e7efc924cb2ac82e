/* The expert store: LRU slots filled on demand through the port (store.h). */
#include "store.h"

#include <string.h>

int mf_store_max_blob(const mf_port *port, const mf_image_header *h, size_t *bytes)
{
    size_t mx = 0;
    for (uint32_t l = 0; l < h->n_layers; l++)
        for (uint32_t e = 0; e < h->n_experts; e++) {
            mf_expert_entry ent;
            int rc = mf_image_expert_entry(port, h, MF_SEC_EXPERT_DIR, l, e, &ent);
            if (rc) return rc;
            if (ent.bytes > mx) mx = ent.bytes;
        }
    *bytes = mx;
    return MF_OK;
}

int mf_store_init(mf_expert_store *s, mf_arena *a, const mf_port *port, const mf_image_header *h,
                  uint32_t n_slots, size_t max_blob, int verify, uint32_t max_retries,
                  mf_stats *stats)
{
    if (n_slots == 0) return MF_E_ARG;
    memset(s, 0, sizeof *s);
    s->port = port;
    s->h = h;
    s->n_slots = n_slots;
    s->slot_bytes = (max_blob + MF_ARENA_ALIGN - 1u) & ~(size_t)(MF_ARENA_ALIGN - 1u);
    s->verify = verify;
    s->max_retries = max_retries;
    s->stats = stats;
    s->slots = mf_arena_alloc(a, sizeof(mf_store_slot) * n_slots);
    size_t n_bits = (size_t)h->n_layers * h->n_experts;
    s->verified = mf_arena_alloc(a, (n_bits + 7) / 8);
    for (uint32_t i = 0; i < n_slots; i++) {
        uint8_t *d = mf_arena_alloc(a, s->slot_bytes);
        if (s->slots) {
            s->slots[i].layer = s->slots[i].expert = -1;
            s->slots[i].data = d;
        }
    }
    return a->overflow ? MF_E_ARENA : MF_OK;
}

/* Reads and (when asked) checks one blob, retrying transient faults. */
static int fill(mf_expert_store *s, mf_store_slot *slot, uint32_t layer, uint32_t expert)
{
    mf_expert_entry e;
    int rc = mf_image_expert_entry(s->port, s->h, MF_SEC_EXPERT_DIR, layer, expert, &e);
    if (rc) return rc;
    if (e.bytes > s->slot_bytes) return MF_E_FORMAT;
    size_t bit = (size_t)layer * s->h->n_experts + expert;
    int check = s->verify == 1 || (s->verify == 2 && !(s->verified[bit / 8] & (1u << (bit % 8))));
    int last = MF_OK;
    for (uint32_t attempt = 0; attempt <= s->max_retries; attempt++) {
        if (attempt) s->stats->retries++;
        uint64_t t0 = mf_port_now_ns(s->port);
        int prc = mf_port_read(s->port, e.offset, slot->data, e.bytes);
        s->stats->stall_ns += mf_port_now_ns(s->port) - t0;
        if (prc != MF_PORT_OK) {
            s->stats->flash_errors++;
            last = prc == MF_PORT_ERANGE ? MF_E_RANGE : MF_E_FLASH;
            if (prc == MF_PORT_ERANGE) break;
            continue;
        }
        s->stats->flash_bytes += e.bytes;
        if (check && mf_crc32(0, slot->data, e.bytes) != e.crc32) {
            s->stats->crc_failures++;
            last = MF_E_CRC;
            continue;
        }
        if (check) s->verified[bit / 8] |= (uint8_t)(1u << (bit % 8));
        slot->encoding = e.encoding;
        return MF_OK;
    }
    return last;
}

int mf_store_get(mf_expert_store *s, uint32_t layer, uint32_t expert, const uint8_t **blob,
                 int *encoding)
{
    if (!s || !blob || !encoding || layer >= s->h->n_layers || expert >= s->h->n_experts)
        return MF_E_ARG;
    s->tick++;
    mf_store_slot *victim = NULL;
    for (uint32_t i = 0; i < s->n_slots; i++) {
        mf_store_slot *sl = &s->slots[i];
        if (sl->layer == (int32_t)layer && sl->expert == (int32_t)expert) {
            sl->pins++;
            sl->last_use = s->tick;
            s->stats->hits++;
            *blob = sl->data;
            *encoding = sl->encoding;
            return MF_OK;
        }
        if (sl->pins == 0 && (!victim || sl->last_use < victim->last_use)) victim = sl;
    }
    if (!victim) return MF_E_STATE; /* every slot pinned */
    s->stats->misses++;
    victim->layer = victim->expert = -1;
    int rc = fill(s, victim, layer, expert);
    if (rc) return rc;
    victim->layer = (int32_t)layer;
    victim->expert = (int32_t)expert;
    victim->pins = 1;
    victim->last_use = s->tick;
    *blob = victim->data;
    *encoding = victim->encoding;
    return MF_OK;
}

void mf_store_release(mf_expert_store *s, uint32_t layer, uint32_t expert)
{
    if (!s) return;
    for (uint32_t i = 0; i < s->n_slots; i++) {
        mf_store_slot *sl = &s->slots[i];
        if (sl->layer == (int32_t)layer && sl->expert == (int32_t)expert) {
            if (sl->pins) sl->pins--;
            return;
        }
    }
}
