#!/bin/sh
# Fixed allocation: no object built from runtime/, experts/ or port/ may
# reference the C heap. Checks the undefined symbols of every object file.
BUILD=${BUILD:-build}
pass=0; fail=0
objs=$(find "$BUILD/obj/runtime" "$BUILD/obj/experts" "$BUILD/obj/port" -name '*.o' 2>/dev/null)
if [ -z "$objs" ]; then
    echo "FAIL no objects found under $BUILD/obj/{runtime,experts,port}"; fail=1
fi
for o in $objs; do
    bad=$(nm -u "$o" | awk '{print $NF}' | grep -E '^(malloc|free|calloc|realloc|aligned_alloc|posix_memalign|strdup)$')
    if [ -n "$bad" ]; then
        echo "FAIL $o uses the heap: $bad"; fail=$((fail + 1))
    else
        pass=$((pass + 1))
    fi
done
echo "no_heap: $pass passed, $fail failed"
