/* See elfsym.h. Each file is read at most twice: its segments and build id
 * when a profile first lists it, its symbols when a frame in it is first
 * named. Each time it is mapped read-only and unmapped again; the function
 * symbols of .symtab (or, for a stripped file, .dynsym) are copied with
 * their names into the tracer's memory and sorted by address. No
 * mapping of the file outlives the reading: a file truncated later (a
 * library rebuilt in place) cannot fault the tracer. Files are keyed by
 * device and inode, as /proc/self/maps gives them, so a path that now
 * names another file is never read for the one that was mapped. */
#include "elfsym.h"

#include <elf.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "arena.h"
#include "log.h"
#include "procmaps.h"

#define FILES 256
#define LOADS 16
#define BUILD_ID_HEX 129

struct fsym {
	uint64_t value;
	uint32_t size;
	uint32_t name; /* offset in names */
};

struct load {
	uint64_t offset, filesz, vaddr;
};

struct efile {
	uint64_t dev, inode;
	/* Each set last: a fill cut short (by fork) is an empty slot, a
	 * reading of symbols cut short is done again. */
	int ready, symbols_read;
	struct fsym *syms;
	size_t nsyms, syms_bytes;
	char *names;
	size_t names_bytes;
	struct load load[LOADS];
	unsigned nload;
	char build_id[BUILD_ID_HEX];
};

static struct efile files[FILES];
static unsigned next_victim;

static void drop_symbols(struct efile *f)
{
	arena_unmap(f->syms, f->syms_bytes);
	arena_unmap(f->names, f->names_bytes);
	f->syms = NULL;
	f->names = NULL;
	f->nsyms = f->syms_bytes = f->names_bytes = 0;
}

static void clear(struct efile *f)
{
	drop_symbols(f);
	memset(f, 0, sizeof(*f));
}

/* Opens the file m maps if it is still that file (same device and
 * inode). A file deleted or replaced since (a library upgraded under a
 * running service) is reached through /proc/self/exe if it is the
 * executable, else through /proc/self/map_files, which the kernel opens
 * only for CAP_SYS_ADMIN. */
static int open_mapped(const struct mapping *m, struct stat *st)
{
	char map_files[64];
	ht_snprintf(map_files, sizeof(map_files), "/proc/self/map_files/%lx-%lx",
		    (unsigned long)m->start, (unsigned long)m->end);
	const char *paths[3] = {m->path, "/proc/self/exe", map_files};
	for (int i = 0; i < 3; i++) {
		if (paths[i][0] != '/')
			continue;
		/* O_NONBLOCK: a path that names a FIFO now must not hang us */
		int fd = open(paths[i], O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0)
			continue;
		if (fstat(fd, st) == 0 && S_ISREG(st->st_mode) &&
		    st->st_ino == m->inode &&
		    ((uint64_t)major(st->st_dev) << 32 | minor(st->st_dev)) == m->dev)
			return fd;
		close(fd);
	}
	return -1;
}

static int is_function(const Elf64_Sym *s)
{
	unsigned type = ELF64_ST_TYPE(s->st_info);
	return (type == STT_FUNC || type == STT_GNU_IFUNC) &&
	       s->st_shndx != SHN_UNDEF && s->st_size > 0 &&
	       s->st_size <= UINT32_MAX;
}

/* Sift-down heapsort by value: no allocation, no recursion. */
static void sift(struct fsym *a, size_t i, size_t n)
{
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			return;
		if (c + 1 < n && a[c + 1].value > a[c].value)
			c++;
		if (a[i].value >= a[c].value)
			return;
		struct fsym t = a[i];
		a[i] = a[c];
		a[c] = t;
		i = c;
	}
}

static void sort_syms(struct fsym *a, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		sift(a, i, n);
	for (size_t end = n; end-- > 1;) {
		struct fsym t = a[0];
		a[0] = a[end];
		a[end] = t;
		sift(a, 0, end);
	}
}

/* The bytes of a function symbol's name with its NUL, or 0 when the
 * symbol is no function or its name is empty or runs off the table. */
static size_t function_name_len(const Elf64_Sym *s, const char *strtab,
				size_t strtab_size)
{
	if (!is_function(s) || s->st_name >= strtab_size)
		return 0;
	const char *name = strtab + s->st_name;
	const char *nul = memchr(name, '\0', strtab_size - s->st_name);
	return !nul || nul == name ? 0 : (size_t)(nul - name) + 1;
}

/* Copies the function symbols of one symbol table section; 0 if it holds
 * none (or is malformed), -1 when memory ran out. */
static int copy_table(struct efile *f, const unsigned char *map, size_t size,
		      const Elf64_Shdr *sh, const Elf64_Shdr *shdrs, unsigned shnum)
{
	if (sh->sh_link >= shnum || sh->sh_entsize != sizeof(Elf64_Sym) ||
	    sh->sh_offset > size || sh->sh_size > size - sh->sh_offset)
		return 0;
	const Elf64_Shdr *str = &shdrs[sh->sh_link];
	if (str->sh_offset > size || str->sh_size > size - str->sh_offset)
		return 0;
	const Elf64_Sym *sym = (const Elf64_Sym *)(map + sh->sh_offset);
	const char *strtab = (const char *)(map + str->sh_offset);
	size_t nsym = sh->sh_size / sizeof(Elf64_Sym), count = 0, bytes = 0;
	for (size_t i = 0; i < nsym; i++) {
		size_t len = function_name_len(&sym[i], strtab, str->sh_size);
		count += len != 0;
		bytes += len;
	}
	if (!count || bytes > UINT32_MAX)
		return 0;
	f->syms_bytes = count * sizeof(struct fsym);
	f->names_bytes = bytes;
	f->syms = arena_map(f->syms_bytes);
	f->names = arena_map(f->names_bytes);
	if (!f->syms || !f->names)
		return -1;
	size_t used = 0;
	for (size_t i = 0; i < nsym && f->nsyms < count; i++) {
		size_t len = function_name_len(&sym[i], strtab, str->sh_size);
		if (!len)
			continue;
		memcpy(f->names + used, strtab + sym[i].st_name, len);
		f->syms[f->nsyms++] = (struct fsym){sym[i].st_value,
						    (uint32_t)sym[i].st_size,
						    (uint32_t)used};
		used += len;
	}
	sort_syms(f->syms, f->nsyms);
	return 1;
}

static void hex_build_id(struct efile *f, const unsigned char *p, size_t n)
{
	if (n > (BUILD_ID_HEX - 1) / 2)
		n = (BUILD_ID_HEX - 1) / 2;
	for (size_t j = 0; j < n; j++) {
		f->build_id[2 * j] = "0123456789abcdef"[p[j] >> 4];
		f->build_id[2 * j + 1] = "0123456789abcdef"[p[j] & 15];
	}
	f->build_id[2 * n] = '\0';
}

static void read_segments(struct efile *f, const unsigned char *map, size_t size,
			  const Elf64_Ehdr *eh)
{
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > size ||
	    (size_t)eh->e_phnum * sizeof(Elf64_Phdr) > size - eh->e_phoff)
		return;
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(map + eh->e_phoff);
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_LOAD && f->nload < LOADS) {
			f->load[f->nload++] = (struct load){ph[i].p_offset,
							    ph[i].p_filesz,
							    ph[i].p_vaddr};
			continue;
		}
		if (ph[i].p_type != PT_NOTE || f->build_id[0] ||
		    ph[i].p_offset > size || ph[i].p_filesz > size - ph[i].p_offset)
			continue;
		const unsigned char *p = map + ph[i].p_offset;
		const unsigned char *end = p + ph[i].p_filesz;
		while ((size_t)(end - p) >= sizeof(Elf64_Nhdr)) {
			const Elf64_Nhdr *nh = (const Elf64_Nhdr *)p;
			size_t namesz = ((size_t)nh->n_namesz + 3) & ~(size_t)3;
			size_t descsz = ((size_t)nh->n_descsz + 3) & ~(size_t)3;
			const unsigned char *name = p + sizeof(*nh);
			if ((size_t)(end - name) < namesz ||
			    (size_t)(end - name - namesz) < nh->n_descsz)
				break;
			if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
			    memcmp(name, "GNU", 4) == 0) {
				hex_build_id(f, name + namesz, nh->n_descsz);
				break;
			}
			if ((size_t)(end - name - namesz) < descsz)
				break;
			p = name + namesz + descsz;
		}
	}
}

/* The file m maps, mapped read-only, if it is an ELF64 file; NULL if not. */
static const unsigned char *map_file(const struct mapping *m, size_t *size)
{
	struct stat st;
	int fd = open_mapped(m, &st);
	if (fd < 0)
		return NULL;
	*size = (size_t)st.st_size;
	void *map = *size >= sizeof(Elf64_Ehdr)
			? mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0)
			: MAP_FAILED;
	close(fd);
	if (map == MAP_FAILED)
		return NULL;
	const Elf64_Ehdr *eh = map;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64) {
		munmap(map, *size);
		return NULL;
	}
	return map;
}

/* What every profile needs of each mapped file: its segments and build
 * id. A file that cannot be read is kept too, with nothing in it, so that
 * it is not tried again on every request. */
static void fill(struct efile *f, const struct mapping *m)
{
	size_t size;
	f->dev = m->dev;
	f->inode = m->inode;
	const unsigned char *map = map_file(m, &size);
	if (map) {
		read_segments(f, map, size, (const Elf64_Ehdr *)map);
		munmap((void *)map, size);
	}
	f->ready = 1;
}

/* The function symbols, read the first time a frame in the file is to be
 * named: a profile names none, so most files never need them. */
static void read_symbols(struct efile *f, const struct mapping *m)
{
	size_t size;
	const unsigned char *map = map_file(m, &size);
	if (!map)
		goto done;
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)map;
	if (eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff > size ||
	    (size_t)eh->e_shnum * sizeof(Elf64_Shdr) > size - eh->e_shoff)
		goto unmap;
	const Elf64_Shdr *sh = (const Elf64_Shdr *)(map + eh->e_shoff);
	static const unsigned order[2] = {SHT_SYMTAB, SHT_DYNSYM};
	for (int k = 0; k < 2 && !f->nsyms; k++)
		for (unsigned i = 0; i < eh->e_shnum && !f->nsyms; i++)
			if (sh[i].sh_type == order[k] &&
			    copy_table(f, map, size, &sh[i], sh, eh->e_shnum) < 0) {
				drop_symbols(f);
				goto unmap;
			}
unmap:
	munmap((void *)map, size);
done:
	f->symbols_read = 1;
}

/* The files asked for last, by a hash of their inode: a page of frames
 * asks for the same few files again and again. Checked on use, so a slot
 * refilled with another file is never taken for the one it held. */
#define RECENT 16
static struct efile *recent[RECENT];

static struct efile *file_of(const struct mapping *m)
{
	if (!m->inode)
		return NULL; /* anonymous memory, [vdso], ... */
	struct efile **hint = &recent[(m->inode ^ m->dev) % RECENT];
	if (*hint && (*hint)->ready && (*hint)->inode == m->inode &&
	    (*hint)->dev == m->dev)
		return *hint;
	struct efile *free_slot = NULL;
	for (unsigned i = 0; i < FILES; i++) {
		if (files[i].ready && files[i].inode == m->inode &&
		    files[i].dev == m->dev)
			return *hint = &files[i];
		if (!files[i].ready && !free_slot)
			free_slot = &files[i];
	}
	if (!free_slot) {
		free_slot = &files[next_victim++ % FILES];
		clear(free_slot);
	} else if (free_slot->syms || free_slot->names) {
		clear(free_slot); /* a fill cut short */
	}
	fill(free_slot, m);
	return *hint = free_slot;
}

int elfsym_lookup(const struct mapping *m, uintptr_t addr, const char **name,
		  uint64_t *off)
{
	struct efile *f = file_of(m);
	if (f && !f->symbols_read) {
		drop_symbols(f); /* what a reading cut short left */
		read_symbols(f, m);
	}
	if (!f || !f->nsyms)
		return 0;
	uint64_t fo = addr - m->start + m->offset, vaddr = 0;
	unsigned i;
	for (i = 0; i < f->nload; i++)
		if (fo >= f->load[i].offset && fo - f->load[i].offset < f->load[i].filesz)
			break;
	if (i == f->nload)
		return 0;
	vaddr = fo - f->load[i].offset + f->load[i].vaddr;
	/* The last symbol at or below vaddr, then the few before it: one of
	 * them may be a larger function that holds a smaller one. */
	size_t lo = 0, hi = f->nsyms;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (f->syms[mid].value <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t k = lo, tries = 0; k > 0 && tries < 8; k--, tries++) {
		const struct fsym *s = &f->syms[k - 1];
		if (vaddr - s->value < s->size) {
			*name = f->names + s->name;
			*off = vaddr - s->value;
			return 1;
		}
	}
	return 0;
}

void elfsym_build_id(const struct mapping *m, char *buf, size_t size)
{
	struct efile *f = file_of(m);
	buf[0] = '\0';
	if (f && size)
		strncat(buf, f->build_id, size - 1);
}
