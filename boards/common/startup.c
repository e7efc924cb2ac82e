/*
 * Cortex-M startup shared by the boards: the vector table, the reset handler
 * (.data copy, .bss zero, FPU/MVE enable, board_init, main, board_exit) and a
 * fault handler that reports the faulting PC on the console and exits with
 * status 70. Symbols come from boards/common/sections.ld.
 */
#include <stdint.h>
#include <string.h>

#include "board.h"

extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __stack_top[], __stack_bottom[];

#define STACK_PAINT 0x5AC3A55Cu

int main(void);
void Reset_Handler(void) __attribute__((noreturn));
void Fault_Handler(void) __attribute__((naked, noreturn));
void Default_Handler(void);

typedef void (*vector_fn)(void);

__attribute__((section(".vectors"), used)) const vector_fn mf_vectors[16] = {
    (vector_fn)(uintptr_t)__stack_top,
    Reset_Handler,
    Fault_Handler, /* NMI */
    Fault_Handler, /* HardFault */
    Fault_Handler, /* MemManage */
    Fault_Handler, /* BusFault */
    Fault_Handler, /* UsageFault */
    Fault_Handler, /* SecureFault (v8-M) */
    0, 0, 0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMonitor */
    0,
    Default_Handler, /* PendSV */
    Default_Handler, /* SysTick */
};

void Default_Handler(void) {}

size_t board_stack_used(void)
{
    const uint32_t *q = __stack_bottom;
    while (q < __stack_top && *q == STACK_PAINT) q++;
    return (size_t)((const uint8_t *)__stack_top - (const uint8_t *)q);
}

/* newlib's libc may reference these through __libc_init_array; nothing to do. */
void _init(void) {}
void _fini(void) {}

__attribute__((used)) static void fault_report(const uint32_t *frame, uint32_t exc_return)
{
    volatile uint32_t *const CFSR = (volatile uint32_t *)0xE000ED28u;
    volatile uint32_t *const HFSR = (volatile uint32_t *)0xE000ED2Cu;
    volatile uint32_t *const ICSR = (volatile uint32_t *)0xE000ED04u;
    con_puts("\n*** fault: exception ");
    con_putu(*ICSR & 0x1FFu);
    con_puts(" pc=");
    con_puthex(frame[6]);
    con_puts(" lr=");
    con_puthex(frame[5]);
    con_puts(" cfsr=");
    con_puthex(*CFSR);
    con_puts(" hfsr=");
    con_puthex(*HFSR);
    con_puts(" exc_return=");
    con_puthex(exc_return);
    con_puts("\n");
    board_exit(70);
}

void Fault_Handler(void)
{
    __asm__ volatile("tst lr, #4\n"
                     "ite eq\n"
                     "mrseq r0, msp\n"
                     "mrsne r0, psp\n"
                     "mov r1, lr\n"
                     "b fault_report\n");
}

void Reset_Handler(void)
{
    /* The memory functions here must not touch the FPU: the compiler is
     * allowed to vectorise them, so plain loops with volatile pointers. */
    volatile uint32_t *s = __data_load, *d = __data_start;
    while (d < __data_end) *d++ = *s++;
    for (volatile uint32_t *b = __bss_start; b < __bss_end;) *b++ = 0;
    /* Paint the stack below the current frame so that board_stack_used()
     * can report the high-water mark. */
    {
        uint32_t sp;
        __asm__ volatile("mov %0, sp" : "=r"(sp));
        for (volatile uint32_t *q = __stack_bottom; (uint32_t)(uintptr_t)q < sp - 64u;) *q++ = STACK_PAINT;
    }

#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    /* CPACR: full access to CP10/CP11 (FPU and, on v8.1-M, MVE). */
    volatile uint32_t *const CPACR = (volatile uint32_t *)0xE000ED88u;
    *CPACR |= 0xFu << 20;
    __asm__ volatile("dsb\n isb" ::: "memory");
#endif
    /* Trap divide by zero and unaligned accesses by multi-word instructions
     * (UsageFault); enable the configurable fault handlers. */
    volatile uint32_t *const CCR = (volatile uint32_t *)0xE000ED14u;
    volatile uint32_t *const SHCSR = (volatile uint32_t *)0xE000ED24u;
    *CCR |= 1u << 4; /* DIV_0_TRP */
    *SHCSR |= (1u << 16) | (1u << 17) | (1u << 18);

    board_init();
    int status = main();
    board_exit(status);
}
