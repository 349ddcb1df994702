# Oracles for persistent dirty bitmaps (t_img_bitmaps.sh, t_snap_bitmaps.sh,
# t_commit_crash.sh): what QEMU reads in a bitmap, through qemu-nbd -B and
# qemu-img map x-dirty-bitmap. Set BM_TMP to a scratch directory first.

# bitmap_alone FILE: a json: name opening one qcow2 file without its backing.
bitmap_alone() {
    printf 'json:{"driver":"qcow2","file":{"driver":"file","filename":"%s"},"backing":null}' "$1"
}

# bitmap_dirty FILE NAME: "start length" of each dirty range of bitmap NAME
# of FILE (alone).
bitmap_dirty() {
    local sock=$BM_TMP/bitmap-nbd.sock pid i out="" opts
    rm -f "$sock"
    qemu-nbd -r -k "$sock" -B "$2" "$(bitmap_alone "$1")" &
    pid=$!
    for ((i = 0; i < 500; i++)); do [[ -S $sock ]] && break; sleep 0.01; done
    opts="driver=nbd,server.type=unix,server.path=$sock,x-dirty-bitmap=qemu:dirty-bitmap:$2"
    # The socket exists from bind(), connections are refused until listen():
    # on a loaded machine the map may come between the two. Try again then.
    for ((i = 0; i < 20; i++)); do
        out=$(qemu-img map --output=json --image-opts "$opts" 2>/dev/null) && break
        sleep 0.05
    done
    ((i < 20)) || out=$(qemu-img map --output=json --image-opts "$opts") || true
    jq -r '.[] | select(.data == false) | "\(.start) \(.length)"' <<<"$out"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
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
