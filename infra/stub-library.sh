#!/bin/sh
# Replaces a shared library by a stub that only satisfies the dynamic linker, for a library
# that is linked but never called in the renderer image (Dockerfile.renderer says which and why):
#
#   stub-library.sh LIB IMPORTER...
#
# The stub has LIB's soname and defines exactly the symbols the IMPORTERs import from LIB, with
# LIB's symbol versions: each function returns 0 (`xorl %eax, %eax; ret`), each object is zeros
# of LIB's size for it. It needs nothing (no NEEDED entries), so what only LIB needed can go too.
# A call into the stub would return 0 ("failed" or "none"): the image's build check renders with
# every engine to show none happens. Needs binutils (nm, readelf, as, ld); POSIX sh and awk.
set -eu
export LC_ALL=C

lib=${1:?usage: stub-library.sh LIB IMPORTER...}
shift
[ $# -gt 0 ] || { echo "stub-library.sh: name the libraries that import from $lib" >&2; exit 2; }
real=$(readlink -f "$lib")
# Its soname, else (as Cycles' oneAPI library) its file name, which the importers' NEEDED names.
soname=$(readelf -d "$real" | sed -n 's/.*(SONAME).*\[\(.*\)\]$/\1/p')
soname=${soname:-$(basename "$lib")}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# `name` or `name@VERSION`, as the importers ask for them.
nm -D --undefined-only "$@" | awk '{print $2}' | sort -u >"$work/wanted"
# name[@VERSION] type size (nm prints `@@` for a default version; the size is hex, absent for
# some symbols).
nm -D --defined-only -S "$real" |
  awk 'NF == 4 { print $4, $3, $2 } NF == 3 { print $3, $2, "8" }' |
  sed 's/@@/@/' | sort -k1,1 >"$work/given"
join "$work/wanted" "$work/given" >"$work/stubbed"
[ -s "$work/stubbed" ] || { echo "stub-library.sh: the importers take nothing from $lib" >&2; exit 1; }

awk -v s="$work/stub.s" -v m="$work/versions" '
  {
    split($1, part, "@"); name = part[1]; version = part[2]; type = $2
    size = 0; hex = tolower($3)
    for (i = 1; i <= length(hex); i++) size = size * 16 + index("0123456789abcdef", substr(hex, i, 1)) - 1
    if (size < 1) size = 8
    if (type ~ /^[TtWi]$/) {
      printf ".text\n.globl %s\n.type %s,@function\n%s:\n  xorl %%eax, %%eax\n  ret\n", name, name, name > s
    } else if (type ~ /^[BbDdRrVvu]$/) {
      printf ".data\n.balign 16\n.globl %s\n.type %s,@object\n.size %s, %d\n%s:\n  .zero %d\n", name, name, name, size, name, size > s
    } else next
    if (version != "") names[version] = names[version] "    " name ";\n"
  }
  END {
    print ".section .note.GNU-stack,\"\",@progbits" > s
    for (v in names) printf "%s {\n  global:\n%s};\n", v, names[v] > m
  }' "$work/stubbed"

set -- -shared -soname "$soname" -o "$work/stub.so" "$work/stub.o"
if [ -s "$work/versions" ]; then set -- "$@" --version-script "$work/versions"; fi
as -o "$work/stub.o" "$work/stub.s"
ld "$@"
echo "stub-library.sh: $soname: $(wc -l <"$work/stubbed") symbols stubbed, $(wc -c <"$real") bytes -> $(wc -c <"$work/stub.so")" >&2
cat "$work/stub.so" >"$real"
