# Helpers of the delete/commit/verify/setup scripts (t_snap_delete.sh,
# t_snap_commit.sh, t_snap_verify.sh, t_snap_setup.sh, t_snap_faults.sh).
# Source after lib/common.sh and lib/snap.sh; R is the fake root.

# saved_sums R DOMAIN SNAP [TARGETS]: what the guest saw at snapshot SNAP,
# read now from the images its saved <domain> names (the frozen images).
saved_sums() {
    local r=$1 d=$2 s=$3 f t src fmt tmp out=""
    f=$r$SNAP_DIR/$d/$s.xml
    for t in ${4:-vda vdb vdc sda}; do
        src=$(xmllint --xpath "string(//domain/devices/disk[target/@dev='$t']/source/@file)" "$f")
        fmt=$(xmllint --xpath "string(//domain/devices/disk[target/@dev='$t']/driver/@type)" "$f")
        tmp=$(mktemp "$T/saved.XXXXXX")
        if qemu-img convert -U -O raw "$(chain_spec "$r" "$src" "$fmt" 2>"$tmp.err")" "$tmp" 2>>"$tmp.err"; then
            out+="$t=$(sha256sum <"$tmp" | cut -d' ' -f1) "
        else # (why, in the failure message)
            out+="$t=unreadable($src: $(oracle_err "$tmp.err")) "
        fi
        rm -f "$tmp" "$tmp.err"
    done
    echo "${out% }"
}

# check_images_no_corruption R: like check_images, but leaks (exit 3) are fine
# too: only corruption or an unreadable image is reported.
check_images_no_corruption() {
    local r=$1 f rc
    while IFS= read -r -d '' f; do
        [[ $(head -c 4 "$f" | xxd -p) == 514649fb ]] || continue
        rc=0
        qemu-img check -U -q "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"$f\"},\"backing\":null}" \
            >/dev/null 2>&1 || rc=$?
        ((rc == 0 || rc == 3)) || echo "qemu-img check $f: exit $rc: $(qemu-img check -U "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"$f\"},\"backing\":null}" 2>&1 | oracle_err /dev/stdin)"
    done < <(find "$r" -type f -print0)
}

# full_check WHAT DOMAIN [CURRENT_COUNT]: after every step: the config and
# every snapshot file validate, every qcow2 image passes qemu-img check,
# extsnap verify exits 0, at most one current snapshot, no journal.
full_check() {
    local what=$1 d=$2 rc=0 out
    check_eq "$what: config and snapshot files validate" "" "$(validate_all "$R" "$d")"
    check_eq "$what: qemu-img check of every image" "" "$(check_images "$R")"
    out=$(x verify "$d" 2>&1) || rc=$?
    check_eq "$what: extsnap verify exit status ($out)" 0 "$rc"
    if [[ -n ${3:-} ]]; then
        check_eq "$what: current snapshots" "$3" "$(current_snapshot "$R" "$d" | wc -l)"
    fi
    check_eq "$what: no journal left" "" "$(ls "$R$SNAP_DIR" | grep journal || true)"
}

# snap_parent R DOMAIN SNAP: the parent named in SNAP's file ("" for a root).
snap_parent() { xmllint --xpath 'string(/domainsnapshot/parent/name)' "$1$SNAP_DIR/$2/$3.xml"; }

# saved_source R DOMAIN SNAP TARGET: the source in SNAP's saved <domain>.
saved_source() {
    xmllint --xpath "string(//domain/devices/disk[target/@dev='$4']/source/@file)" "$1$SNAP_DIR/$2/$3.xml"
}

# backing_of FILE: the backing file name in a qcow2 header ("" if none).
backing_of() {
    local info
    info=$(qemu-img info -U --output=json "$1")
    jq -r '."backing-filename" // ""' <<<"$info"
}

# images_sums R: sha256 of every image file under the domain image dirs
# (to prove a refused or metadata-only command touched no image).
images_sums() { (cd "$1/var/lib/libvirt/images" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum); }
