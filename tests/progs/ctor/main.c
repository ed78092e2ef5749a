/* The program of libctor_lib.so (tests/test_untraced.py): one traced
 * allocation of its own, after start. */
#include <stdio.h>
#include <stdlib.h>

void *ctor_lib_block(int i);

int main(void)
{
	void *mine = malloc(777);
	printf("%p %p\n", mine, ctor_lib_block(0));
	return 0;
}
