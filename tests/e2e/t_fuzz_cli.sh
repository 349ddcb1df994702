#!/usr/bin/env bash
# Mutation fuzzing through the binary: 200 damaged images (header
# fields, extension words, backing names, L1/L2/refcount entries, random bit
# flips in metadata, truncation, chains that loop), made from qemu-img seeds
# with a seeded generator, through the read-only commands `img info` (human,
# JSON with the chain), `img map`, `img check` and `img compare`. Each run:
#   - finishes within 10 s and is not killed by a signal (no crash);
#   - exits with a status the command documents (info/map 0|1, check
#     0|1|2|3 or 63 when the damage made it a raw file, compare 0|1|2);
#   - on an error, prints exactly one line "extsnap: CMD: ..." on stderr
#     (img check may add its detail lines, which do not start "extsnap:");
#   - changes no file (sha256 before and after);
#   - no sanitizer report (for the ASan build).
# FUZZ_CLI_SEED and FUZZ_CLI_N reproduce or widen a run; a failure prints
# the seed, the mutant number and the mutations.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
need_cmd qemu-img qemu-io xxd sha256sum timeout

SEED=${FUZZ_CLI_SEED:-1}
N=${FUZZ_CLI_N:-200}
# Sanitizer reports get their own exit status, never mistaken for exit 1.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=99
export UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}exitcode=99

cd "$T"
mkdir seeds m

# --- seeds --------------------------------------------------------------
q() { qemu-io -f qcow2 "$@" >/dev/null; }
new() { qemu-img create -q -f qcow2 "$@"; }
cd seeds
new s64.qcow2 4M
q -c 'write -P 1 0 64k' -c 'write -P 2 1M 100k' -c 'write -z 2M 64k' s64.qcow2
new -o cluster_size=512,refcount_bits=1 s512.qcow2 256k
q -c 'write -P 4 0 2k' -c 'write -P 5 100k 1k' -c 'write -z 200k 1k' s512.qcow2
new -o cluster_size=4k,compat=0.10 sv2.qcow2 1M
q -c 'write -P 6 0 8k' -c 'write -P 7 512k 4k' sv2.qcow2
new -o cluster_size=64k,extended_l2=on sxl2.qcow2 4M
q -c 'write -P 9 4k 4k' -c 'write -z 8k 4k' -c 'write -P 10 1M 64k' sxl2.qcow2
new -o cluster_size=4k src.qcow2 256k
q -c 'write -P 11 0 32k' -c 'write -P 12 64k 4k' src.qcow2
qemu-img convert -c -O qcow2 -o cluster_size=4k src.qcow2 szlib.qcow2
qemu-img convert -c -O qcow2 -o cluster_size=512,compression_type=zstd src.qcow2 szstd.qcow2
rm src.qcow2
new -o cluster_size=4k,refcount_bits=64 ssnap.qcow2 1M
q -c 'write -P 8 4k 8k' ssnap.qcow2
qemu-img snapshot -c s1 ssnap.qcow2
q -c 'write -P 13 4k 4k' ssnap.qcow2
new -o cluster_size=4k sbm.qcow2 1M
qemu-img bitmap --add sbm.qcow2 bm0
q -c 'write -P 14 0 4k' sbm.qcow2
# a chain: the base or the top gets the damage
new -o cluster_size=4k cb.qcow2 1M
q -c 'write -P 16 0 64k' cb.qcow2
new -o cluster_size=4k -b cb.qcow2 -F qcow2 ct.qcow2
q -c 'write -P 17 4k 8k' -c 'write -z 32k 4k' ct.qcow2
cd ..
SINGLES=(s64 s512 sv2 sxl2 szlib szstd ssnap sbm)

# --- helpers (pure bash where it can be: a few thousand runs add up) -----
export LC_ALL=C
# HEX[name] = the seed's bytes as hex digits, read once; offsets of its
# structures computed once.
declare -A HEX TAB
hex_of() { xxd -p "$1" | tr -d '\n'; }
peekh() { # NAME OFFSET LEN -> number, from the seed's hex
    local h=${HEX[$1]:$((2 * $2)):$((2 * $3))}
    echo $((16#${h:-0}))
}
poke() { # FILE OFFSET HEX
    local esc="" k
    for ((k = 0; k < ${#3}; k += 2)); do esc+="\\x${3:k:2}"; done
    printf '%b' "$esc" | dd of="$1" bs=1 seek=$(($2)) conv=notrunc status=none
}
fsize() { stat -c %s "$1"; }
# 30 random bits from bash's seeded generator
r30() { echo $(((RANDOM << 15) | RANDOM)); }
pick() { # pick one of the arguments
    local a=("$@")
    echo "${a[$(($(r30) % ${#a[@]}))]}"
}
hexval() { # VALUE BYTES -> hex digits
    local v
    printf -v v '%016x' "$1"
    echo "${v:$((16 - 2 * $2))}"
}
# "cs l1 l2 rt rb size" of a seed, from its header
tables() {
    local n=$1 cb cs l1 l2 rt rb
    cb=$(peekh "$n" 20 4)
    cs=$((1 << (cb > 0 && cb < 22 ? cb : 16)))
    l1=$(peekh "$n" 40 8)
    rt=$(peekh "$n" 48 8)
    l2=$(($(peekh "$n" "$l1" 8) & 0x00fffffffffffe00))
    rb=$(($(peekh "$n" "$rt" 8) & ~0x1ff))
    echo "$cs $l1 $l2 $rt $rb $((${#HEX[$n]} / 2))"
}
for f in seeds/*.qcow2; do
    n=$(basename "$f" .qcow2)
    HEX[$n]=$(hex_of "$f")
    TAB[$n]=$(tables "$n")
done

# Header fields (offset:size) and values that sit on boundaries.
FIELDS=(0:4 4:4 8:8 16:4 20:4 24:8 32:4 36:4 40:8 48:8 56:4 60:4 64:8 72:8 80:8 88:8 96:4 100:4 104:1)
VALUES=(0 1 7 8 9 14 16 21 22 31 64 0x7f 0x80 0xff 0x100 0x200 0x1ff 0xffff 0x10000 0x7fffffff
    0x80000000 0xffffffff 0x100000000 0x8000000000000000 0x7fffffffffffffff -1 0x4000000000000000
    0x00fffffffffffe00 0x100000000000000)

DESC=""
note() { DESC="${DESC:+$DESC; }$*"; }

# One mutation of FILE, a copy of seed NAME (structures: cs l1 l2 rt rb size).
mutate_once() {
    local f=$1 n=$2 cs=$3 l1=$4 l2=$5 rt=$6 rb=$7 size=$8 kind fld off len v at byte
    kind=$(($(r30) % 8))
    case $kind in
    0 | 1) # a header field
        fld=$(pick "${FIELDS[@]}")
        off=${fld%%:*} len=${fld##*:}
        v=$(pick "${VALUES[@]}" "$size" "$cs" "$l1" "$l2" "$rt" "$rb" $((size + cs)))
        poke "$f" "$off" "$(hexval "$v" "$len")"
        note "header[$off..+$len] = $v"
        ;;
    2 | 3) # an L1, L2 or refcount table entry: other metadata, past EOF, flags
        at=$(pick "$l1" "$l2" "$l2" "$rt" "$rb")
        ((at > 0 && at < size)) || return 0
        at=$((at + 8 * ($(r30) % 16)))
        v=$(pick "$l1" "$l2" "$rt" "$rb" 0 "$size" $((size + cs)) $((1 << 40)) $((cs + 1)))
        v=$(($(pick 0 0x8000000000000000 0x4000000000000000 0x8000000000000001 1) | v))
        poke "$f" "$at" "$(hexval "$v" 8)"
        note "entry at $at = $(printf '0x%x' "$v")"
        ;;
    4) # the backing name: itself, a protocol, a size that overruns
        off=$(peekh "$n" 8 8)
        len=$(peekh "$n" 16 4)
        ((off > 0 && off + 16 < size)) || return 0
        v=$(pick "$(basename "$f")" "nbd:x:1" "." "/dev/null")
        printf '%s' "$v" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
        poke "$f" 16 "$(hexval "$(pick ${#v} ${#v} $((len + 3)) 0 1024)" 4)"
        note "backing name = '$v'"
        ;;
    5) # truncate
        v=$(pick $(($(r30) % (size + 1))) "$l1" "$l2" "$rt" "$rb" $((l2 + 8)) 100 72)
        ((v < size)) || return 0
        truncate -s "$v" "$f"
        note "truncate to $v"
        ;;
    *) # flip bits in the first clusters or in a table
        at=$(pick 0 0 "$l1" "$l2" "$rt" "$rb")
        at=$((at + $(r30) % (at ? (cs < 4096 ? cs : 4096) : (cs < 1024 ? cs : 1024))))
        ((at < size)) || return 0
        byte=$(peekh "$n" "$at" 1)
        v=$((byte ^ (1 << ($(r30) % 8))))
        poke "$f" "$at" "$(hexval "$v" 1)"
        note "byte $at: $byte -> $v"
        ;;
    esac
}

mutate() { # FILE SEED-NAME
    local n k
    n=$(pick 1 1 1 2 3)
    for ((k = 0; k < n; k++)); do
        # shellcheck disable=SC2086
        mutate_once "$1" "$2" ${TAB[$2]}
    done
}

# run WHAT ALLOWED_EXITS CMD...: run one command on the mutant, judge it.
run() {
    local what=$1 allowed=$2 rc=0 line nes=0 err
    shift 2
    timeout -k 5 10 "$EXTSNAP" "$@" >/dev/null 2>"$T/err" || rc=$?
    ES_CHECKS=$((ES_CHECKS + 1))
    local ctx="mutant $i (FUZZ_CLI_SEED=$SEED, $label: $DESC): extsnap $*"
    local -a lines
    mapfile -t lines <"$T/err"
    err=$(printf '%s\n' "${lines[@]:0:20}")
    if ((rc == 124 || rc == 137)); then
        fail "$ctx: hung (killed after 10 s)"
        return
    fi
    if ((rc > 128)); then
        fail "$ctx: killed by signal $((rc - 128)): $err"
        return
    fi
    if ((rc == 99)) || [[ $err == *Sanitizer* || $err == *"runtime error:"* ]]; then
        fail "$ctx: sanitizer report:"$'\n'"$err"
        return
    fi
    if [[ " $allowed " != *" $rc "* ]]; then
        fail "$ctx: exit status $rc (allowed: $allowed): $err"
        return
    fi
    for line in "${lines[@]}"; do
        [[ $line == "extsnap: "* ]] && nes=$((nes + 1))
    done
    if [[ $what == check ]]; then
        # detail lines are fine; one error line exactly when it failed
        if ((rc == 1 && nes != 1)) || ((rc != 1 && rc != 63 && nes > 1)); then
            fail "$ctx: exit $rc with $nes 'extsnap:' lines on stderr:"$'\n'"$err"
        fi
        return
    fi
    local failed=$((rc != 0))
    [[ $what == compare ]] && failed=$((rc >= 2))
    if ((failed)); then
        if ((${#lines[@]} != 1 || nes != 1)); then
            fail "$ctx: exit $rc with ${#lines[@]} lines on stderr (want one 'extsnap:' line):"$'\n'"$err"
        elif [[ ${lines[0]} != "extsnap: img $what: "* ]]; then
            fail "$ctx: error line does not name the command: ${lines[0]}"
        fi
    elif ((${#lines[@]} != 0)); then
        fail "$ctx: exit $rc but stderr is not empty: $err"
    fi
}

# --- the run --------------------------------------------------------------
RANDOM=$SEED
CHANGED=0 # mutants that differ from their seed: proves the mutator works
for ((i = 0; i < N; i++)); do
    rm -f m/*
    DESC=""
    if ((i % 5 == 4)); then
        cp seeds/cb.qcow2 seeds/ct.qcow2 m/
        victim=$(pick cb ct)
        label="chain, $victim damaged"
        mutate "m/$victim.qcow2" "$victim"
        img=m/ct.qcow2
        orig=seeds/ct.qcow2
    else
        s=${SINGLES[$((i % ${#SINGLES[@]}))]}
        cp "seeds/$s.qcow2" m/
        label=$s
        mutate "m/$s.qcow2" "$s"
        img=m/$s.qcow2
        orig=seeds/$s.qcow2
    fi
    cmp -s "$img" "$orig" && [[ $label != chain* ]] || CHANGED=$((CHANGED + 1))
    sha256sum m/* >"$T/before"
    run info "0 1" img info "$img"
    run info "0 1" img info --output=json --backing-chain "$img"
    run map "0 1" img map --output=json "$img"
    run check "0 1 2 3 63" img check "$img"
    run compare "0 1 2" img compare "$img" "$orig"
    sha256sum m/* >"$T/after"
    ES_CHECKS=$((ES_CHECKS + 1))
    d=$(diff "$T/before" "$T/after") || fail "mutant $i (FUZZ_CLI_SEED=$SEED, $label: $DESC): files changed:"$'\n'"$d"
done

ES_CHECKS=$((ES_CHECKS + 1))
((CHANGED * 10 >= N * 6)) || fail "only $CHANGED of $N mutants differ from their seed: the mutator is broken"
finish
