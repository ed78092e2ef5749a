/* The switch to a walk stack (altstack.h). It is a frame-pointer frame:
 * the caller's rbp is pushed on the program's stack and rbp points at it,
 * then rsp moves to the new stack for the call. Its call frame rule, CFA =
 * rbp + 16, therefore names the caller's stack pointer on the program's
 * stack, with the return address below it and the saved rbp at CFA - 16,
 * wherever rsp is: an unwinder (libunwind, libgcc's) steps from fn's
 * frames through this one into the caller's as through any other. A signal
 * handler that runs meanwhile sees an ordinary stack; fn returns here and
 * rsp is put back from rbp. */
#include "altstack.h"

#if defined(__x86_64__)
#ifdef __CET__
#define ENDBR "endbr64\n\t"
#else
#define ENDBR ""
#endif

__asm__(".text\n\t"
	".globl altstack_call\n\t"
	".hidden altstack_call\n\t"
	".type altstack_call, @function\n\t"
	".p2align 4\n"
	"altstack_call:\n\t"
	".cfi_startproc\n\t"
	ENDBR
	"pushq %rbp\n\t"
	".cfi_def_cfa_offset 16\n\t"
	".cfi_offset %rbp, -16\n\t"
	"movq %rsp, %rbp\n\t"
	".cfi_def_cfa_register %rbp\n\t"
	"movq %rdi, %rsp\n\t" /* top: the walk stack */
	"movq %rdx, %rdi\n\t" /* arg */
	"callq *%rsi\n\t"     /* fn; its int result stays in eax */
	"movq %rbp, %rsp\n\t"
	"popq %rbp\n\t"
	".cfi_def_cfa %rsp, 8\n\t"
	"retq\n\t"
	".cfi_endproc\n\t"
	".size altstack_call, .-altstack_call\n\t");
#else
int altstack_call(void *top, int (*fn)(void *), void *arg)
{
	(void)top;
	return fn(arg);
}
#endif
