/* The executable half of the shared-library symbolization test. */
void shlib_work(void);
void shlib_write(void);

int main(void)
{
	shlib_work(); /* @shlib_main */
	shlib_write();
	return 0;
}
