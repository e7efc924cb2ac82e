/*
 * Board profiles for the flash simulator. Every figure and its source is in
 * docs/board-profiles.md; keep the two in step.
 *
 * Compute cost: ns per weight byte = cycles per weight (one MAC) x weights
 * per byte / core clock. Weights per byte at group 32, scales included
 * (runtime/quant.c layouts): f32 1/4, bf16/f16 1/2, q8 32/34 (8.5 bits),
 * q4 32/18 (4.5 bits), q3 32/16 (4 bits), q2 32/12 (3 bits).
 */
#include <string.h>

#include "sim_port.h"

/* ns per byte from cycles per weight, bits per weight and the clock in MHz. */
#define NSB(cyc, bits, mhz) ((cyc) * 8.0 / (bits) * 1000.0 / (mhz))
#define ENC_ROW(mhz, f32, bf16, f16, q8, q4, q3, q2)                                           \
    {NSB(f32, 32.0, mhz), NSB(bf16, 16.0, mhz), NSB(f16, 16.0, mhz), NSB(q8, 8.5, mhz),        \
     NSB(q4, 4.5, mhz),  NSB(q3, 4.0, mhz),   NSB(q2, 3.0, mhz)}
/* Attention: ns per KV-cache byte from cycles per KV value of each KV
 * encoding (q8 8 bits a value: model.c charges the int8 bytes, not the
 * scales). q4..q2 are no KV encodings; they repeat q8's entry. */
#define ATT_ROW(mhz, f32, bf16, f16, q8)                                                       \
    {NSB(f32, 32.0, mhz), NSB(bf16, 16.0, mhz), NSB(f16, 16.0, mhz), NSB(q8, 8.0, mhz),        \
     NSB(q8, 8.0, mhz),   NSB(q8, 8.0, mhz),    NSB(q8, 8.0, mhz)}

/* Cortex-M55 with Helium at 400 MHz (Alif Ensemble HP core class).
 * Calibrated from exact executed-instruction counts of our firmware under
 * QEMU (bench/results/mps3-an547/, docs/board-profiles.md says how), at an
 * assumed 1.25 cycles per instruction in the Helium kernels (dual-beat MVE
 * instructions overlapping pairwise) and 1.0 elsewhere:
 *   q8 0.233 instructions per MAC -> 0.29 cycles per weight;
 *   q4 0.275 -> 0.34;
 *   q3 0.690 -> 0.86;
 *   q2 0.366 -> 0.46;
 *   element-wise work 175k instructions per token (64 slots: everything
 *   but the kernels, the flash copy and the CRC) over the 12,736 values
 *   model.c charges; 81k of them are the Helium activation quantisation
 *   and SwiGLU, charged 1.25 as if all were Helium -> 195k cycles, 15.3
 *   per f32 (it was 28.5 with their scalar code, 363k instructions);
 *   CRC-32 (the Helium folding kernel mf_crc32_arm, 15 instructions per
 *   16 bytes in its loop) 0.946 instructions per byte on a 32 KiB blob,
 *   88 % Helium -> 1.17 cycles per byte (3.00 with the tables);
 *   f32 (ops.c mf_matmul, one token: the Helium kernel mf_matvec_f32_arm,
 *   two rows per pass) 1.05 instructions per MAC, 84-87 % of them Helium
 *   -> 1.28 cycles per weight (mean of 128x128, 256x128, 128x256; it was
 *   1.89 with mf_dot_f32 per row);
 *   attention (ops.c mf_attention_head -> the Helium kernel
 *   mf_attention_head_arm, f32 KV, head_dim 32) 90.1 cycles per position
 *   per query head at a 512-position context (75-80 instructions, 75-79 %
 *   Helium; 328 cycles per call + 89.5 per position); the tiny model's 4
 *   heads per 512 charged KV bytes (2 KV heads of 32, K and V) -> 0.704
 *   cycles per byte = 2.82 per f32 of KV (4.86 with the portable code,
 *   137-142 instructions per position). Per position about 13 of those
 *   instructions are the softmax (exp), which does not grow with
 *   head_dim: other head shapes cost differently per byte.
 *   The same over a q8 / f16 / bf16 KV cache (ops.c mf_attention_head_kv
 *   -> mf_attention_head_kv_arm, widening in registers, three K rows per
 *   pass): 113.5-120.9 / 87.4-92.9 / 87.4-92.8 instructions per
 *   position, 137.2 / 105.6 / 105.6 cycles at 512 (512 / 389 / 382 per
 *   call + 136.2 / 104.8 / 104.8 per position) -> 4.29 / 3.30 / 3.30
 *   cycles per KV value (x 4 heads / 128 values; they were 6.15 / 5.51 /
 *   4.99 with the first Helium kernel, 171-175 / 152-156 / 138-142
 *   instructions): a q8 value costs 1.5x an f32 one (int8 -> float, the
 *   scale), so a q8 byte 6.1x an f32 byte (the portable code, scalar
 *   widening into a scratch row: 644 / 1376 / 802 instructions per
 *   position, 20.8 / 43.7 / 25.8 cycles per value).
 *   bf16 / f16 weights (quant.c mf_matvec -> the Helium kernel
 *   mf_matvec_half_arm, widening in registers, two rows per pass) 1.36-1.47
 *   instructions per MAC, 77-84 % Helium -> 1.70 cycles per weight (mean
 *   of 256x128 and 128x256; the portable code took 3.6-3.8 instructions
 *   per MAC for bf16 and 15.9-16.0 for f16, whose software widening was
 *   charged the 1.25 estimated here before 2026-11-29). */
#define M55_MHZ 400.0
#define M55_ENC ENC_ROW(M55_MHZ, 1.28, 1.70, 1.70, 0.29, 0.34, 0.86, 0.46)
#define M55_ATT ATT_ROW(M55_MHZ, 2.82, 3.30, 3.30, 4.29) /* cycles per KV value */
#define M55_OTHER NSB(15.3, 32.0, M55_MHZ)  /* per f32 activation value */
#define M55_CHECK NSB(1.17, 8.0, M55_MHZ)   /* per byte */

/* Cortex-A72 at 1.5 GHz (Raspberry Pi 4), NEON without dot product;
 * f32 is bound by LPDDR4 bandwidth (~4.5 GB/s for one core). */
#define A72_MHZ 1500.0
#define A72_ENC ENC_ROW(A72_MHZ, 1.33, 0.8, 0.8, 0.5, 0.6, 0.8, 0.6)
#define A72_ATT ATT_ROW(A72_MHZ, 1.33, 1.33, 1.33, 1.33) /* f32's per value: not measured */
#define A72_OTHER NSB(2.0, 32.0, A72_MHZ)
/* CRC-32 by CRC32X (mf_crc32 in a -march=armv8-a+crc build, as mk/aarch64.mk
 * makes): 0.50 instructions per byte under qemu (bench/results/aarch64/,
 * 3.75 with the tables), one serial chain of CRC32X at about 3 cycles each
 * -> ~0.4 cycles per byte (estimate; it was 2.0 for the tables). */
#define A72_CHECK NSB(0.4, 8.0, A72_MHZ)

/* Cortex-X1 class big core at 3.0 GHz, NEON with SDOT (ARMv8.2). */
#define X1_MHZ 3000.0
#define X1_ENC ENC_ROW(X1_MHZ, 0.4, 0.3, 0.3, 0.1, 0.15, 0.25, 0.15)
#define X1_ATT ATT_ROW(X1_MHZ, 0.4, 0.4, 0.4, 0.4) /* f32's per value: not measured */
#define X1_OTHER NSB(1.0, 32.0, X1_MHZ)
#define X1_CHECK NSB(0.25, 8.0, X1_MHZ) /* CRC32X chain, ~2 cycles per 8 bytes (estimate; 1.0 for the tables) */

/* Cortex-M33 at 150 MHz with FPU and DSP, no Helium (RP2350 class: the
 * rp2350 board's core). From exact executed-instruction counts of our
 * firmware on its core under QEMU (boards/mps2-an505 with the rp2350's
 * flags; bench/results/mps2-an505/) at an assumed 1.25 cycles per
 * instruction (an estimate: loads not paired with other work take two
 * cycles on this pipeline; no board measured):
 *   matvec at group 32, two rows a pass (SMLAD): q8 2.26 instructions per
 *   MAC -> 2.82 cycles per weight; q4 2.38 -> 2.97; q3 3.86 -> 4.83; q2
 *   2.26 -> 2.83; f32 (ops.c mf_dot_f32, eight lanes in registers) 4.84 ->
 *   6.05; f16 / bf16 (mf_matvec_half_arm) 4.57 / 5.45 -> 5.71 / 6.81;
 *   attention per position and query head, head_dim 32, 1024 positions:
 *   f32 KV 400 instructions (ops.c's scalar code, two positions a pass),
 *   q8 / f16 / bf16 KV (the scalar-FPU kernel mf_attention_head_kv_arm)
 *   636 / 546 / 546 -> x 1.25 x 4 heads / 128 values = 15.6 / 24.9 / 21.3 /
 *   21.3 cycles per KV value;
 *   element-wise work: 577k instructions per token (2 slots, q4/q4 image:
 *   everything but the matvec kernels, the f32 dots, the flash copy, the
 *   CRC and the attention kernel) over the 12,736 values model.c charges,
 *   227k of them software double arithmetic (rmsnorm and softmax sums;
 *   the M33's FPU is single precision) -> 45.3 instructions, 56.6 cycles
 *   per value (the M55: 15.3);
 *   CRC-32 by image.c's slicing-by-4 tables, 3.75 instructions per byte on
 *   32 KiB -> 4.69 cycles (the M33 has neither Helium nor a CRC
 *   instruction). */
#define M33_MHZ 150.0
#define M33_ENC ENC_ROW(M33_MHZ, 6.05, 6.81, 5.71, 2.82, 2.97, 4.83, 2.83)
#define M33_ATT ATT_ROW(M33_MHZ, 15.6, 21.3, 21.3, 24.9) /* cycles per KV value */
#define M33_OTHER NSB(56.6, 32.0, M33_MHZ) /* per f32 activation value */
#define M33_CHECK NSB(4.69, 8.0, M33_MHZ) /* per byte */

static const mf_sim_profile profiles[] = {
    {
        "mcu-qspi",
        "Cortex-M55 400 MHz + quad-SPI NOR 133 MHz SDR (66.5 MB/s)",
        "Cortex-M55 + Helium",
        M55_MHZ,
        "quad-SPI NOR, W25Q128JV class, 133 MHz SDR, Fast Read Quad I/O",
        66.5e6, /* 133 MHz x 4 bits / 8 */
        1000.0, /* ~20 clocks cmd/addr/dummy (150 ns) + DMA/driver setup */
        1,
        256,
        4,
        M55_ENC,
        M55_ATT,
        M55_OTHER,
        M55_CHECK,
    },
    {
        "mcu-octal",
        "Cortex-M55 400 MHz + octal-SPI DDR NOR 200 MHz (400 MB/s)",
        "Cortex-M55 + Helium",
        M55_MHZ,
        "octal-SPI DTR NOR, Macronix OctaFlash MX25LM51245G class, 200 MHz DTR",
        400e6, /* 200 MHz x 8 bits x 2 edges / 8 */
        1000.0, /* ~24 clocks cmd/addr/20 dummy (120 ns) + DMA/driver setup */
        1,
        256,
        4,
        M55_ENC,
        M55_ATT,
        M55_OTHER,
        M55_CHECK,
    },
    {
        "mcu-m33-qspi",
        "Cortex-M33 150 MHz + quad-SPI NOR 75 MHz (37.5 MB/s): Raspberry Pi Pico 2 class",
        "Cortex-M33 + DSP, FPU (RP2350 class)",
        M33_MHZ,
        "quad-SPI NOR, W25Q32RV class, 75 MHz SDR (clk_sys / 2), Fast Read Quad I/O",
        37.5e6, /* 75 MHz x 4 bits / 8 */
        1000.0, /* 20 clocks prefix/address/wait (267 ns) + DMA setup */
        1,
        256,
        4,
        M33_ENC,
        M33_ATT,
        M33_OTHER,
        M33_CHECK,
    },
    {
        "sbc-sdcard",
        "Raspberry Pi 4: Cortex-A72 1.5 GHz + microSD (DDR50, 43.9 MB/s, 286 us)",
        "Cortex-A72 (NEON)",
        A72_MHZ,
        "microSD UHS-I DDR50 (Samsung Evo+ 32GB measured on a Pi 4)",
        43.9e6,   /* hdparm buffered read on a Pi 4 */
        286000.0, /* 4K random read 10.8 MB/s: 379 us per 4 KiB - 93 us transfer */
        1,
        4096,
        4,
        A72_ENC,
        A72_ATT,
        A72_OTHER,
        A72_CHECK,
    },
    {
        "phone-ufs",
        "Phone: Cortex-X1 class 3.0 GHz + UFS 3.1 (2100 MB/s, 75 us, queue 32)",
        "Cortex-X1 class (NEON + SDOT)",
        X1_MHZ,
        "UFS 3.1 (Samsung 512GB eUFS 3.1), TLC NAND, command queue 32",
        2100e6, /* sequential read */
        75000.0, /* TLC page read latency */
        0,
        4096,
        32,
        X1_ENC,
        X1_ATT,
        X1_OTHER,
        X1_CHECK,
    },
};

int mf_sim_profile_count(void)
{
    return (int)(sizeof profiles / sizeof profiles[0]);
}

const mf_sim_profile *mf_sim_profile_at(int i)
{
    if (i < 0 || i >= mf_sim_profile_count()) return NULL;
    return &profiles[i];
}

const mf_sim_profile *mf_sim_profile_find(const char *name)
{
    if (!name) return NULL;
    for (int i = 0; i < mf_sim_profile_count(); i++)
        if (strcmp(profiles[i].name, name) == 0) return &profiles[i];
    return NULL;
}
