# Oracles for persistent dirty bitmaps (t_img_bitmaps.sh, t_snap_bitmaps.sh,
# t_commit_crash.sh): what QEMU reads in a bitmap, through qemu-nbd -B and
# qemu-img map x-dirty-bitmap. Set BM_TMP to a scratch directory first.

# bitmap_alone FILE: a json: name opening one qcow2 file without its backing.
bitmap_alone() {
    printf 'json:{"driver":"qcow2","file":{"driver":"file","filename":"%s"},"backing":null}' "$1"
}

# bitmap_dirty FILE NAME: "start length" of each dirty range of bitmap NAME
# of FILE (alone). qemu-nbd's output goes to a file (it never holds the
# caller's pipe open); the socket can exist before qemu-nbd listens on it,
# so a refused connection is tried again.
bitmap_dirty() {
    local sock=$BM_TMP/bitmap-nbd.sock pid i map
    rm -f "$sock"
    qemu-nbd -r -k "$sock" -B "$2" "$(bitmap_alone "$1")" </dev/null >"$BM_TMP/bitmap-nbd.log" 2>&1 &
    pid=$!
    for ((i = 0; i < 500; i++)); do
        if [[ -S $sock ]] && map=$(qemu-img map --output=json --image-opts \
            "driver=nbd,server.type=unix,server.path=$sock,x-dirty-bitmap=qemu:dirty-bitmap:$2" 2>"$BM_TMP/bitmap-map.err"); then
            break
        fi
        kill -0 "$pid" 2>/dev/null || break # qemu-nbd gave up
        sleep 0.01
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    [[ -n ${map:-} ]] || { echo "bitmap_dirty $1 $2: $(cat "$BM_TMP/bitmap-nbd.log" "$BM_TMP/bitmap-map.err")" >&2; return 1; }
    jq -r '.[] | select(.data == false) | "\(.start) \(.length)"' <<<"$map"
}

# bitmap_missed OLD.raw NEW.raw RANGES...: the 4 KiB blocks whose content
# differs between the two raw files and that no "start length" range
# covers (space-separated block indexes; empty: no missed change).
bitmap_missed() {
    local old=$1 new=$2 c r s l hit missed=""
    shift 2
    while read -r c; do
        hit=0
        for r in "$@"; do
            s=${r% *} l=${r#* }
            ((c * 4096 >= s && (c + 1) * 4096 <= s + l)) && { hit=1; break; }
        done
        ((hit)) || missed+="$c "
    done < <(cmp -l "$old" "$new" | awk '{ print int(($1 - 1) / 4096) }' | uniq)
    echo "$missed"
}
