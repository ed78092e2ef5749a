/* Code the unwinder gets no help with (tests/progs/hostile_unwind.c):
 * built with -fno-asynchronous-unwind-tables -fno-unwind-tables
 * -fomit-frame-pointer (tests/progs/extra.mk), so these frames have no CFI
 * and no frame pointer; and two assembly trampolines without CFI that call
 * their argument with %rbp pointing at an unmapped page, or at itself (a
 * frame-pointer chain that loops). */
#include "nounwind.h"

void *volatile nounwind_sink;

void nounwind_call(void (*fn)(void))
{
	fn();
	nounwind_sink = (void *)fn; /* not a tail call */
}

void nounwind_twice(void (*fn)(void))
{
	nounwind_call(fn);
	nounwind_call(fn);
}

/* void bad_rbp_call(void (*fn)(void)) and loop_rbp_call(fn): %rbp is
 * callee-saved, so it is restored before returning. */
__asm__(".text\n"
	".globl bad_rbp_call\n"
	".type bad_rbp_call, @function\n"
	"bad_rbp_call:\n"
	"	push %rbp\n"
	"	mov $0x1000, %rbp\n"
	"	call *%rdi\n"
	"	pop %rbp\n"
	"	ret\n"
	".size bad_rbp_call, .-bad_rbp_call\n"
	".globl loop_rbp_call\n"
	".type loop_rbp_call, @function\n"
	"loop_rbp_call:\n"
	"	push %rbp\n"
	"	sub $16, %rsp\n"
	"	mov %rsp, %rbp\n"
	"	mov %rbp, (%rsp)\n"
	"	movq $0, 8(%rsp)\n"
	"	call *%rdi\n"
	"	add $16, %rsp\n"
	"	pop %rbp\n"
	"	ret\n"
	".size loop_rbp_call, .-loop_rbp_call\n");
