/*
 * The three ways a host test reads an image: a memory buffer (mem port),
 * the simulated flash over that buffer (a board profile's timing), or the
 * image file through the POSIX port (pread + I/O thread). One struct holds
 * every port's state, so a test opens one kind and closes it the same way.
 */
#ifndef MF_TEST_PORT_FIXTURE_H
#define MF_TEST_PORT_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "../port/posix/posix_port.h"
#include "../port/sim/sim_port.h"

enum { MF_TEST_PORT_MEM, MF_TEST_PORT_SIM, MF_TEST_PORT_FILE };

typedef struct {
    int kind;
    mf_mem_port_state ms;
    mf_port mem, sim, file;
    mf_sim_state ss;
    mf_posix_port_state ps;
    const mf_port *port; /* the one to hand to mf_init */
} mf_test_ports;

/* kind MF_TEST_PORT_SIM uses `profile` (NULL: mcu-qspi); MF_TEST_PORT_FILE
 * opens `path`. MF_PORT_OK or the port's error. */
static inline int mf_test_ports_open(mf_test_ports *t, int kind, const uint8_t *img, size_t len,
                                     const char *path, const char *profile)
{
    t->kind = kind;
    t->port = &t->mem;
    int rc = mf_mem_port_open(&t->mem, &t->ms, img, len);
    if (rc == MF_PORT_OK && kind == MF_TEST_PORT_SIM) {
        rc = mf_sim_port_open(&t->sim, &t->ss, &t->mem,
                              mf_sim_profile_find(profile ? profile : "mcu-qspi"), NULL);
        t->port = &t->sim;
    }
    if (rc == MF_PORT_OK && kind == MF_TEST_PORT_FILE) {
        rc = mf_posix_port_open(&t->file, &t->ps, path);
        t->port = &t->file;
    }
    return rc;
}

static inline void mf_test_ports_close(mf_test_ports *t)
{
    if (t->kind == MF_TEST_PORT_FILE) mf_posix_port_close(&t->file);
}

#endif
