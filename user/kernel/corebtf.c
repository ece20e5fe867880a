// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The kernel's BTF as the BPF object needs it (corebtf.h).
 *
 * libbpf 1.1 reads /sys/kernel/btf/vmlinux (5.5 MB on 6.18) 4 KiB at a
 * time, copies it, indexes its ~126k types and then, for each CO-RE
 * relocation, compares the name of every type with the one wanted: 45-50 ms
 * of CPU alone on this kind of machine, a third of a standalone start
 * (docs/performance.md). Here the file is mapped (Linux 6.16+; read into
 * one populated buffer before), walked once to find the few types the
 * relocations name and the kfunc, and only those types, with only the
 * members the relocations reach, at the kernel's offsets, go into a BTF of
 * a few hundred bytes that libbpf takes as btf_custom_path. libbpf then does
 * the relocations itself, against the kernel's layout: a member the kernel
 * lacks is missing here too, so the result is libbpf's own either way
 * (tests/bpf/test_corebtf.c compares every program's instructions).
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/btf.h>

#include "corebtf.h"
#include "log.h"
#include <weir/unix.h>

#define VMLINUX_BTF "/sys/kernel/btf/vmlinux"
#define KERN_CTX_KFUNC "bpf_cast_to_kern_ctx"
#define MAX_ROOTS 64
#define MAX_NODES 64
#define MAX_MEMBERS 32
#define MAX_STEPS 16
#define MAX_MEMO 512
#define MAX_DEPTH 16

/* The kernel's BTF, raw: its types by id, nothing parsed beyond that. */
struct kbtf {
	void *map;
	size_t map_sz;
	const char *types, *strs;
	__u32 types_len, strs_len;
	__u32 *offs; /* id -> offset in types; offs[0] unused (void) */
	size_t offs_sz;
	__u32 n; /* ids 1..n-1 */
};

struct member {
	const char *name;
	__u32 bit_off, bitfield, type; /* type: the kernel's id */
};

/* A kernel struct or union the relocations reach, with the members they do. */
struct node {
	__u32 type;
	unsigned int nmembers;
	struct member m[MAX_MEMBERS];
};

/* A relocation's root: the local type's name and kind, and its kernel id. */
struct root {
	const char *name;
	size_t len; /* the "essential" name: without a ___flavour */
	int kind;
	__u32 type; /* 0: not found */
	bool dup;
};

struct build {
	struct kbtf k;
	const struct btf *local;
	struct root roots[MAX_ROOTS];
	unsigned int nroots;
	struct node *nodes;
	unsigned int nnodes;
	struct btf *out;
	__u32 memo_from[MAX_MEMO], memo_to[MAX_MEMO];
	unsigned int nmemo;
	int void_ptr, index_int;
};

/* One record of .BTF.ext's core_relo section (libbpf's bpf_core_relo). */
struct relo_rec {
	__u32 insn_off, type_id, access_str_off, kind;
};

/* .BTF.ext's header as far as the CO-RE relocations (libbpf's btf_ext_header). */
struct ext_hdr {
	__u16 magic;
	__u8 version, flags;
	__u32 hdr_len;
	__u32 func_info_off, func_info_len, line_info_off, line_info_len;
	__u32 core_relo_off, core_relo_len;
};

static const struct btf_type *ktype(const struct kbtf *k, __u32 id)
{
	if (!id || id >= k->n)
		return NULL;
	return (const struct btf_type *)(k->types + k->offs[id]);
}

static const char *kname(const struct kbtf *k, __u32 off)
{
	return off < k->strs_len ? k->strs + off : "";
}

/* Bytes after a type's common part: FIXED, plus PER for each of its vlen
 * entries, by kind (a table, not a switch: the kinds come in no order, and
 * each mispredicted branch of ~126k cost more than the rest of the walk). */
static const __u8 fixed[NR_BTF_KINDS] = {
    [BTF_KIND_INT] = sizeof(__u32),
    [BTF_KIND_ARRAY] = sizeof(struct btf_array),
    [BTF_KIND_VAR] = sizeof(struct btf_var),
    [BTF_KIND_DECL_TAG] = sizeof(struct btf_decl_tag),
};
static const __u8 per[NR_BTF_KINDS] = {
    [BTF_KIND_STRUCT] = sizeof(struct btf_member),
    [BTF_KIND_UNION] = sizeof(struct btf_member),
    [BTF_KIND_ENUM] = sizeof(struct btf_enum),
    [BTF_KIND_FUNC_PROTO] = sizeof(struct btf_param),
    [BTF_KIND_DATASEC] = sizeof(struct btf_var_secinfo),
    [BTF_KIND_ENUM64] = sizeof(struct btf_enum64),
};

/* Anonymous memory, its pages in place at once: a page fault each costs
 * ~15 us in a guest like this one's, 1,340 of them for the file alone. */
static void *populated(size_t sz)
{
	void *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		       -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int kbtf_map(struct kbtf *k)
{
	struct stat st;
	size_t got = 0;
	ssize_t r;
	int fd, err = 0;

	fd = open(VMLINUX_BTF, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || st.st_size < (off_t)sizeof(struct btf_header)) {
		err = -EINVAL;
		goto out;
	}
	k->map_sz = st.st_size;
	k->map = mmap(NULL, k->map_sz, PROT_READ, MAP_PRIVATE, fd, 0);
	if (k->map != MAP_FAILED)
		goto out;
	/* Before 6.16 the file cannot be mapped: read it in one go. */
	k->map = populated(k->map_sz);
	if (!k->map) {
		err = -ENOMEM;
		goto out;
	}
	while (got < k->map_sz && (r = read(fd, (char *)k->map + got, k->map_sz - got)) > 0)
		got += r;
	if (got != k->map_sz)
		err = -EIO;
out:
	if (err && k->map && k->map != MAP_FAILED)
		munmap(k->map, k->map_sz);
	if (err || k->map == MAP_FAILED)
		k->map = NULL;
	close(fd);
	return err;
}

static void found(struct build *b, struct core_btf *cb, const struct btf_type *t, __u32 id);

/* The header checked, every type's offset taken, the roots and the kfunc
 * found: the one pass over it all. */
static int kbtf_index(struct build *b, struct core_btf *cb)
{
	struct kbtf *k = &b->k;
	const struct btf_header *h = k->map;
	const struct btf_type *t;
	__u32 off = 0, cap, kind;

	if (h->magic != BTF_MAGIC || h->version != BTF_VERSION || h->hdr_len < sizeof(*h) ||
	    h->hdr_len > k->map_sz || (size_t)h->type_off + h->type_len > k->map_sz - h->hdr_len ||
	    (size_t)h->str_off + h->str_len > k->map_sz - h->hdr_len)
		return -EPROTO;
	k->types = (const char *)k->map + h->hdr_len + h->type_off;
	k->types_len = h->type_len;
	k->strs = (const char *)k->map + h->hdr_len + h->str_off;
	k->strs_len = h->str_len;
	/* A type is at least 12 bytes: an upper bound on their count. */
	cap = k->types_len / sizeof(struct btf_type) + 2;
	k->offs_sz = (size_t)cap * sizeof(__u32);
	k->offs = populated(k->offs_sz);
	if (!k->offs)
		return -ENOMEM;
	k->n = 1;
	while (off + sizeof(struct btf_type) <= k->types_len) {
		t = (const struct btf_type *)(k->types + off);
		/* Each type's size is known only once it is read: ask for the
		 * bytes ahead early (a cache miss per line otherwise). */
		__builtin_prefetch(k->types + off + 1024);
		kind = btf_kind(t);
		if (kind == BTF_KIND_UNKN || kind >= NR_BTF_KINDS)
			return -EPROTO;
		k->offs[k->n] = off;
		off += sizeof(struct btf_type) + fixed[kind] + (__u32)per[kind] * btf_vlen(t);
		if (off > k->types_len)
			return -EPROTO;
		if (t->name_off &&
		    (kind == BTF_KIND_FUNC || kind == BTF_KIND_STRUCT || kind == BTF_KIND_UNION))
			found(b, cb, t, k->n);
		k->n++;
	}
	return off == k->types_len ? 0 : -EPROTO;
}

static void kbtf_unmap(struct kbtf *k)
{
	if (k->offs)
		munmap(k->offs, k->offs_sz);
	if (k->map)
		munmap(k->map, k->map_sz);
	memset(k, 0, sizeof(*k));
}

static const struct btf_type *kskip(const struct kbtf *k, __u32 *id)
{
	const struct btf_type *t = ktype(k, *id);

	while (t && (btf_is_mod(t) || btf_is_typedef(t))) {
		*id = t->type;
		t = ktype(k, *id);
	}
	return t;
}

static const struct btf_type *lskip(const struct btf *b, __u32 *id)
{
	const struct btf_type *t = btf__type_by_id(b, *id);

	while (t && (btf_is_mod(t) || btf_is_typedef(t))) {
		*id = t->type;
		t = btf__type_by_id(b, *id);
	}
	return t;
}

static size_t essential_len(const char *name)
{
	const char *f = strstr(name, "___");

	return f ? (size_t)(f - name) : strlen(name);
}

/* A section of the ELF object by name, or NULL. */
static const void *elf_section(const void *obj, size_t sz, const char *want, size_t *len)
{
	const Elf64_Ehdr *eh = obj;
	const Elf64_Shdr *sh, *names;
	size_t i;

	if (sz < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_shentsize != sizeof(*sh) ||
	    eh->e_shoff > sz || (size_t)eh->e_shnum * sizeof(*sh) > sz - eh->e_shoff ||
	    eh->e_shstrndx >= eh->e_shnum)
		return NULL;
	sh = (const Elf64_Shdr *)((const char *)obj + eh->e_shoff);
	names = &sh[eh->e_shstrndx];
	for (i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_name >= names->sh_size || sh[i].sh_offset > sz ||
		    sh[i].sh_size > sz - sh[i].sh_offset || names->sh_offset > sz ||
		    names->sh_size > sz - names->sh_offset)
			continue;
		if (strncmp((const char *)obj + names->sh_offset + sh[i].sh_name, want,
			    names->sh_size - sh[i].sh_name))
			continue;
		*len = sh[i].sh_size;
		return (const char *)obj + sh[i].sh_offset;
	}
	return NULL;
}

static struct root *root_of(struct build *b, const char *name, int kind)
{
	size_t len = essential_len(name);
	unsigned int i;

	for (i = 0; i < b->nroots; i++)
		if (b->roots[i].kind == kind && b->roots[i].len == len &&
		    !strncmp(b->roots[i].name, name, len))
			return &b->roots[i];
	if (b->nroots == MAX_ROOTS)
		return NULL;
	b->roots[b->nroots] = (struct root){.name = name, .len = len, .kind = kind};
	return &b->roots[b->nroots++];
}

/* Type ID (a named func, struct or union) if it is the kfunc or a root. */
static void found(struct build *b, struct core_btf *cb, const struct btf_type *t, __u32 id)
{
	const char *name = kname(&b->k, t->name_off);
	unsigned int i;

	if (btf_is_func(t)) {
		if (!cb->kern_ctx_id && !strcmp(name, KERN_CTX_KFUNC))
			cb->kern_ctx_id = id;
		return;
	}
	for (i = 0; i < b->nroots; i++) {
		struct root *r = &b->roots[i];

		/* The same essential name, without a strstr() per type: this
		 * sees ~30k of them. */
		if (r->kind != btf_kind(t) || name[0] != r->name[0] ||
		    strncmp(name, r->name, r->len) ||
		    (name[r->len] && strncmp(name + r->len, "___", 3)))
			continue;
		if (r->type)
			r->dup = true; /* libbpf would weigh both: leave it to libbpf */
		r->type = id;
	}
}

static struct node *node_of(struct build *b, __u32 type)
{
	unsigned int i;

	for (i = 0; i < b->nnodes; i++)
		if (b->nodes[i].type == type)
			return &b->nodes[i];
	if (b->nnodes == MAX_NODES)
		return NULL;
	b->nodes[b->nnodes].type = type;
	b->nodes[b->nnodes].nmembers = 0;
	return &b->nodes[b->nnodes++];
}

/*
 * NAME in the kernel's composite ID, looked for as libbpf does: in its
 * members, and through its anonymous struct and union members, their
 * offsets added (the small BTF has the member directly, at the sum).
 */
static bool find_member(const struct kbtf *k, __u32 id, const char *name, __u32 base,
			struct member *out, int depth)
{
	const struct btf_type *t = ktype(k, id);
	const struct btf_member *m;
	const struct btf_type *mt;
	__u32 mid;
	int i;

	if (!t || depth > MAX_DEPTH)
		return false;
	m = btf_members(t);
	for (i = 0; i < btf_vlen(t); i++, m++) {
		__u32 off = base + btf_member_bit_offset(t, i);

		if (m->name_off) {
			if (strcmp(kname(k, m->name_off), name))
				continue;
			*out = (struct member){.name = kname(k, m->name_off),
					       .bit_off = off,
					       .bitfield = btf_member_bitfield_size(t, i),
					       .type = m->type};
			return true;
		}
		mid = m->type;
		mt = kskip(k, &mid);
		if (mt && btf_is_composite(mt) && find_member(k, mid, name, off, out, depth + 1))
			return true;
	}
	return false;
}

static int add_member(struct node *n, const struct member *m)
{
	unsigned int i;

	for (i = 0; i < n->nmembers; i++)
		if (!strcmp(n->m[i].name, m->name))
			return 0;
	if (n->nmembers == MAX_MEMBERS)
		return -E2BIG;
	n->m[n->nmembers++] = *m;
	return 0;
}

/* A relocation read on the local type: its root, and the named members
 * (NULL: an array index) its access string goes through. Anonymous
 * members are left out: libbpf looks for the named ones through them. */
struct spec {
	struct root *root;
	int nsteps;
	const char *names[MAX_STEPS];
};

/* 0, 1: nothing of the kernel's needed, or a negative errno: a relocation
 * this file does not build for (the caller leaves it all to libbpf). */
static int parse_relo(struct build *b, const struct relo_rec *r, struct spec *s)
{
	const struct btf_type *t;
	const char *acc, *name;
	int idx, used;
	__u32 id = r->type_id;

	if (r->kind == BPF_CORE_TYPE_ID_LOCAL)
		return 1; /* the object's own id */
	/* Field offsets, sizes and existence: what weir's programs use. The
	 * others (bitfield shifts, signedness, type and enum relocations)
	 * weigh more of the type: libbpf's. */
	if (r->kind != BPF_CORE_FIELD_BYTE_OFFSET && r->kind != BPF_CORE_FIELD_BYTE_SIZE &&
	    r->kind != BPF_CORE_FIELD_EXISTS)
		return -EOPNOTSUPP;
	t = lskip(b->local, &id);
	if (!t || !btf_is_composite(t) || !t->name_off)
		return -EOPNOTSUPP;
	s->root = root_of(b, btf__name_by_offset(b->local, t->name_off), btf_kind(t));
	if (!s->root)
		return -E2BIG;
	s->nsteps = 0;
	acc = btf__name_by_offset(b->local, r->access_str_off);
	if (!acc || sscanf(acc, "%d%n", &idx, &used) != 1)
		return -EINVAL;
	for (acc += used; *acc == ':'; acc += used + 1) {
		if (sscanf(acc + 1, "%d%n", &idx, &used) != 1 || idx < 0)
			return -EINVAL;
		if (s->nsteps == MAX_STEPS)
			return -E2BIG;
		t = lskip(b->local, &id);
		if (t && btf_is_composite(t) && idx < btf_vlen(t)) {
			name = btf__name_by_offset(b->local, btf_members(t)[idx].name_off);
			if (name && *name)
				s->names[s->nsteps++] = name;
			id = btf_members(t)[idx].type;
		} else if (t && btf_is_array(t)) {
			s->names[s->nsteps++] = NULL;
			id = btf_array(t)->type;
		} else {
			return -EINVAL;
		}
	}
	return *acc ? -EINVAL : 0;
}

/* The spec followed in the kernel's types, each member reached recorded.
 * A member the kernel lacks ends it: libbpf finds it missing in the small
 * BTF as it would in the kernel's, and does what it does then. */
static int follow(struct build *b, const struct spec *s)
{
	const struct btf_type *t;
	struct member m;
	struct node *n;
	__u32 id = s->root->type;
	int i, err;

	if (!id)
		return 0;
	if (s->root->dup)
		return -ENOTUNIQ;
	if (!node_of(b, id))
		return -E2BIG;
	for (i = 0; i < s->nsteps; i++) {
		t = kskip(&b->k, &id);
		if (!t)
			return 0;
		if (!s->names[i]) {
			if (!btf_is_array(t))
				return 0;
			id = btf_array(t)->type;
			continue;
		}
		if (!btf_is_composite(t))
			return 0;
		n = node_of(b, id);
		if (!n)
			return -E2BIG;
		if (!find_member(&b->k, id, s->names[i], 0, &m, 0))
			return 0;
		err = add_member(n, &m);
		if (err)
			return err;
		id = m.type;
	}
	return 0;
}

/* Every relocation of the sections SKIP keeps, in two passes (PASS 0: the
 * roots' names; 1: followed in the kernel's types). */
static int each_relo(struct build *b, const void *ext, size_t len, bool (*skip)(const char *sec),
		     int pass, unsigned int *nrelos)
{
	const struct ext_hdr *h = ext;
	const char *p, *end, *sec;
	const struct relo_rec *r;
	__u32 rec_sz, nrec, i;
	struct spec s;
	int err;

	if (len < sizeof(*h) || h->magic != BTF_MAGIC || h->hdr_len < sizeof(*h) ||
	    h->hdr_len > len || h->core_relo_off > len - h->hdr_len ||
	    h->core_relo_len > len - h->hdr_len - h->core_relo_off)
		return -EPROTO;
	p = (const char *)ext + h->hdr_len + h->core_relo_off;
	end = p + h->core_relo_len;
	if (p + sizeof(__u32) > end)
		return 0;
	memcpy(&rec_sz, p, sizeof(rec_sz));
	if (rec_sz < sizeof(*r))
		return -EPROTO;
	for (p += sizeof(__u32); p + 2 * sizeof(__u32) <= end;) {
		const __u32 *sh = (const __u32 *)p;

		sec = btf__name_by_offset(b->local, sh[0]);
		nrec = sh[1];
		p += 2 * sizeof(__u32);
		if (!sec || nrec > (size_t)(end - p) / rec_sz)
			return -EPROTO;
		for (i = 0; i < nrec; i++, p += rec_sz) {
			if (skip && skip(sec))
				continue;
			r = (const struct relo_rec *)p;
			err = parse_relo(b, r, &s);
			if (err < 0)
				return err;
			if (err)
				continue;
			if (pass) {
				err = follow(b, &s);
				if (err)
					return err;
				(*nrelos)++;
			}
		}
	}
	return 0;
}

static struct node *find_node(struct build *b, __u32 type)
{
	unsigned int i;

	for (i = 0; i < b->nnodes; i++)
		if (b->nodes[i].type == type)
			return &b->nodes[i];
	return NULL;
}

static int memo(struct build *b, __u32 from, int to)
{
	if (to < 0 || b->nmemo == MAX_MEMO)
		return to < 0 ? to : -E2BIG;
	b->memo_from[b->nmemo] = from;
	b->memo_to[b->nmemo++] = to;
	return to;
}

static int emit_type(struct build *b, __u32 id, int depth);

/* A node: its members' types first (BTF wants a struct's fields right
 * after it), then the struct or union, its size the kernel's. */
static int emit_node(struct build *b, const struct node *n, int depth)
{
	const struct btf_type *t = ktype(&b->k, n->type);
	const char *name = kname(&b->k, t->name_off);
	int ids[MAX_MEMBERS], id, err;
	unsigned int i;

	for (i = 0; i < n->nmembers; i++) {
		ids[i] = emit_type(b, n->m[i].type, depth + 1);
		if (ids[i] < 0)
			return ids[i];
	}
	id = btf_is_struct(t) ? btf__add_struct(b->out, name, t->size)
			      : btf__add_union(b->out, name, t->size);
	if (id < 0)
		return id;
	for (i = 0; i < n->nmembers; i++) {
		err =
		    btf__add_field(b->out, n->m[i].name, ids[i], n->m[i].bit_off, n->m[i].bitfield);
		if (err)
			return err;
	}
	return memo(b, n->type, id);
}

/*
 * The kernel's type ID in the small BTF, as much of it as libbpf's checks
 * of a member look at: an integer's size and encoding, an array's length
 * and element, a struct's or union's name and size (its members only
 * where a relocation reaches them), an enum's name and size; a pointer is
 * a pointer (to void). Typedefs and qualifiers are skipped, as libbpf does.
 */
static int emit_type(struct build *b, __u32 id, int depth)
{
	const struct btf_type *t;
	const struct btf_array *a;
	const struct node *n;
	const char *name;
	unsigned int i;
	__u32 info;
	int elem;

	if (depth > MAX_DEPTH)
		return -ELOOP;
	t = kskip(&b->k, &id);
	if (!id)
		return 0; /* void */
	if (!t)
		return -EINVAL;
	for (i = 0; i < b->nmemo; i++)
		if (b->memo_from[i] == id)
			return b->memo_to[i];
	name = kname(&b->k, t->name_off);
	switch (btf_kind(t)) {
	case BTF_KIND_INT:
		info = *(const __u32 *)(t + 1);
		if (BTF_INT_OFFSET(info) || BTF_INT_BITS(info) != t->size * 8)
			return -EOPNOTSUPP;
		return memo(b, id, btf__add_int(b->out, name, t->size, BTF_INT_ENCODING(info)));
	case BTF_KIND_PTR:
		if (!b->void_ptr)
			b->void_ptr = btf__add_ptr(b->out, 0);
		return b->void_ptr;
	case BTF_KIND_ARRAY:
		a = btf_array(t);
		elem = emit_type(b, a->type, depth + 1);
		if (elem < 0)
			return elem;
		if (!b->index_int)
			b->index_int = btf__add_int(b->out, "int", 4, BTF_INT_SIGNED);
		if (b->index_int < 0)
			return b->index_int;
		return memo(b, id, btf__add_array(b->out, b->index_int, elem, a->nelems));
	case BTF_KIND_STRUCT:
	case BTF_KIND_UNION:
		n = find_node(b, id);
		if (n)
			return emit_node(b, n, depth);
		return memo(b, id,
			    btf_is_struct(t) ? btf__add_struct(b->out, name, t->size)
					     : btf__add_union(b->out, name, t->size));
	case BTF_KIND_ENUM:
	case BTF_KIND_ENUM64:
		return memo(b, id, btf__add_enum(b->out, name, t->size));
	case BTF_KIND_FLOAT:
		return memo(b, id, btf__add_float(b->out, name, t->size));
	case BTF_KIND_FWD:
		return memo(
		    b, id,
		    btf__add_fwd(b->out, name, btf_kflag(t) ? BTF_FWD_UNION : BTF_FWD_STRUCT));
	default:
		return -EOPNOTSUPP;
	}
}

/* The small BTF, into a memfd libbpf opens by its /proc/self/fd path. */
static int emit(struct build *b, struct core_btf *cb)
{
	const void *raw;
	__u32 sz;
	unsigned int i;
	int err, fd;

	b->out = btf__new_empty();
	if (!b->out)
		return -errno;
	/* "long": libbpf's pointer size (else its own, the same on 64 bits). */
	err = btf__add_int(b->out, "long", sizeof(long), BTF_INT_SIGNED);
	for (i = 0; err >= 0 && i < b->nnodes; i++)
		err = emit_type(b, b->nodes[i].type, 0);
	if (err < 0)
		return err;
	raw = btf__raw_data(b->out, &sz);
	if (!raw)
		return -errno;
	fd = memfd_create("weir-core-btf", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, raw, sz) != (ssize_t)sz) {
		close(fd);
		return -EIO;
	}
	cb->fd = fd;
	cb->types = btf__type_cnt(b->out) - 1;
	snprintf(cb->path, sizeof(cb->path), "/proc/self/fd/%d", fd);
	/* libbpf opens it by that path at the load: without /proc (a bare
	 * chroot) it could not, and the load would fail; libbpf's own way
	 * then (the caller closes cb->fd on an error). */
	return access(cb->path, R_OK) ? -errno : 0;
}

int core_btf_prepare(struct core_btf *cb, const void *obj, size_t obj_sz, bool small,
		     bool (*skip)(const char *sec))
{
	const void *data, *ext = NULL;
	size_t len, ext_len = 0;
	struct build *b;
	struct btf *local = NULL;
	int err, walk;

	memset(cb, 0, sizeof(*cb));
	cb->fd = -1;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	/* First the roots' names, from the object: the walk of the kernel's
	 * types looks for them as it goes. */
	data = elf_section(obj, obj_sz, ".BTF", &len);
	if (small)
		ext = elf_section(obj, obj_sz, ".BTF.ext", &ext_len);
	local = data ? btf__new(data, len) : NULL;
	b->local = local;
	b->nodes = calloc(MAX_NODES, sizeof(*b->nodes));
	if (!local)
		err = -EPROTO;
	else if (!b->nodes)
		err = -ENOMEM;
	else if (!small || !ext)
		err = -ENOENT; /* no small BTF wanted, or nothing to relocate */
	else
		err = each_relo(b, ext, ext_len, skip, 0, NULL);
	if (err)
		b->nroots = 0; /* the kfunc alone */
	walk = kbtf_map(&b->k);
	walk = walk ?: kbtf_index(b, cb);
	err = err ?: walk;
	err = err ?: each_relo(b, ext, ext_len, skip, 1, &cb->relos);
	err = err ?: emit(b, cb);
	btf__free(b->out);
	btf__free(local);
	free(b->nodes);
	kbtf_unmap(&b->k);
	free(b);
	if (err && cb->fd >= 0) {
		close(cb->fd);
		cb->fd = -1;
	}
	return err;
}

void core_btf_release(struct core_btf *cb)
{
	if (cb->fd >= 0)
		close(cb->fd);
	cb->fd = -1;
}

int core_btf_patch_calls(const struct core_btf *cb, struct bpf_program *prog)
{
	const struct bpf_insn *insns = bpf_program__insns(prog);
	size_t n = bpf_program__insn_cnt(prog), i;
	struct bpf_insn *copy = NULL;
	int err;

	for (i = 0; i < n; i++) {
		if (insns[i].code != (BPF_JMP | BPF_CALL) || insns[i].src_reg ||
		    insns[i].imm != WEIR_CALL_KERN_CTX)
			continue;
		if (!cb->kern_ctx_id)
			return -ENOENT;
		if (!copy) {
			copy = malloc(n * sizeof(*copy));
			if (!copy)
				return -ENOMEM;
			memcpy(copy, insns, n * sizeof(*copy));
		}
		copy[i].src_reg = BPF_PSEUDO_KFUNC_CALL;
		copy[i].off = 0; /* the kernel's own BTF, not a module's */
		copy[i].imm = cb->kern_ctx_id;
	}
	if (!copy)
		return 0;
	err = bpf_program__set_insns(prog, copy, n);
	free(copy);
	return err;
}
