/* Calls through frames without unwind information (nounwind.c). */
void nounwind_call(void (*fn)(void));
void nounwind_twice(void (*fn)(void));
void bad_rbp_call(void (*fn)(void));
void loop_rbp_call(void (*fn)(void));
