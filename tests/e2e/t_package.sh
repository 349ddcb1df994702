#!/usr/bin/env bash
# What `cmake --install` installs, and the Debian package `cpack -G DEB`
# makes of the same install: extsnap_VERSION_ARCH.deb with the binary, a man
# page per command and extsnap(1), the bash completion, README, the Ansible
# collection under /usr/share/ansible/collections (and the license once the
# repository has one), depending on the Debian packages
# that hold the binary's shared libraries (found here with dpkg -S, not
# written down).
#
# The package is installed for real with dpkg -i, but into a scratch root
# with its own dpkg database (--instdir, --admindir): the database starts as
# a copy of the host's package status, so dpkg checks the Depends line
# against the packages this machine really has, and the host's own dpkg
# state and file system are not touched. Then the installed extsnap runs
# and man(1) finds its pages there.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
need_tool cpack cmake dpkg dpkg-deb dpkg-shlibdeps file man readelf ldd

src=${ES_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${ES_BUILD:?ES_BUILD: the build tree (set by ctest)}
version=$(sed -n 's/^project(extsnap VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
arch=$(dpkg --print-architecture)
commands=$("$EXTSNAP" help | awk '/^Commands:/ {on = 1; next} on && /^  [a-z]/ {print}' |
    sed -E 's/^  ([a-z]+( [a-z]+)?)  .*/\1/; s/ +$//')
ok_eq "version in CMakeLists.txt" "1" "$([[ $version ]] && echo 1)"
ok_eq "commands listed by 'extsnap help'" "1" "$([[ $commands == *create* ]] && echo 1)"
pages=(extsnap)
while read -r c; do pages+=("extsnap-${c// /-}"); done <<<"$commands"

# The files every install has, under prefix $1.
check_tree() {
    local what=$1 p=$2 page
    ok_rc "$what: bin/extsnap" 0 test -x "$p/bin/extsnap" || true
    for page in "${pages[@]}"; do
        ok_rc "$what: man page $page" 0 test -s "$p/share/man/man1/$page.1.gz" || true
    done
    ok_rc "$what: bash completion" 0 test -s "$p/share/bash-completion/completions/extsnap" || true
    ok_rc "$what: README" 0 test -s "$p/share/doc/extsnap/README.md" || true
    local coll=$p/share/ansible/collections/ansible_collections/extsnap/vm m
    ok_rc "$what: the Ansible collection's galaxy.yml" 0 test -s "$coll/galaxy.yml" || true
    for m in extsnap_snapshot extsnap_verify extsnap_info; do
        ok_rc "$what: the Ansible module $m" 0 test -s "$coll/plugins/modules/$m.py" || true
    done
    ok_rc "$what: the Ansible modules' shared code" 0 \
        test -s "$coll/plugins/module_utils/extsnap.py" || true
    local lic
    for lic in LICENSE LICENSE.md COPYING; do
        [[ -f $src/$lic ]] && ok_rc "$what: license ($lic)" 0 test -s "$p/share/doc/extsnap/copyright" || true
    done
    return 0
}

# cmake --install into a prefix of our own.
if cmake --install "$build" --prefix "$T/prefix" >"$T/install.log" 2>&1; then
    check_tree "cmake --install" "$T/prefix"
else
    fail "cmake --install: $(oracle_err "$T/install.log")"
fi

# The package, made in a directory of our own.
if ! cpack -G DEB --config "$build/CPackConfig.cmake" -B "$T/pkg" >"$T/cpack.log" 2>&1; then
    fail "cpack -G DEB: $(oracle_err "$T/cpack.log")"
    finish
fi
deb=$T/pkg/extsnap_${version}_$arch.deb
ok_rc "cpack made extsnap_${version}_$arch.deb" 0 test -f "$deb" || finish
echo "package: $(basename "$deb"), $(stat -c %s "$deb") bytes"
ok_eq "Package field" extsnap "$(dpkg-deb -f "$deb" Package)"
ok_eq "Version field" "$version" "$(dpkg-deb -f "$deb" Version)"
ok_eq "Architecture field" "$arch" "$(dpkg-deb -f "$deb" Architecture)"
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"

# Every shared library the binary needs (its own NEEDED entries; theirs are
# their packages' business) comes from a package named in Depends.
needed=" $(readelf -dW "$EXTSNAP" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ') "
ok_eq "the binary needs shared libraries" 1 "$([[ $needed == *libxml2* ]] && echo 1)"
while read -r lib path; do
    [[ $path == /* && $needed == *" $lib "* ]] || continue
    pkg=
    for p in "$path" "$(readlink -f "$path")" "/usr${path#/usr}" "${path#/usr}"; do
        pkg=$(dpkg -S "$p" 2>/dev/null | head -n1 | cut -d: -f1) && [[ $pkg ]] && break
    done
    if [[ -z $pkg ]]; then
        fail "no Debian package holds $lib ($path)"
        continue
    fi
    ES_CHECKS=$((ES_CHECKS + 1))
    grep -Eq "(^|, )$pkg( |,|$)" <<<"$depends" || fail "Depends lacks $pkg (for $lib): $depends"
done < <(ldd "$EXTSNAP" | awk '$2 == "=>" {print $1, $3}')

# Installed by dpkg into the scratch root.
R=$T/root A=$T/dpkg
# dpkg wants ldconfig and start-stop-daemon on PATH (root's usual sbin dirs).
export PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin
mkdir -p "$R" "$A/info" "$A/updates" "$A/triggers"
cp /var/lib/dpkg/status "$A/status"
: >"$A/available"
if dpkg --admindir="$A" --instdir="$R" --log="$T/dpkg.log" -i "$deb" >"$T/dpkg.out" 2>&1; then
    ok_eq "dpkg status in the scratch root" "install ok installed" \
        "$(dpkg-query --admindir="$A" -W -f='${Status}' extsnap)"
    check_tree "the .deb installed" "$R/usr"
    out=$("$R/usr/bin/extsnap" --version) || fail "installed extsnap --version failed"
    ok_eq "installed extsnap --version names $version" 1 "$([[ $out == *"$version"* ]] && echo 1)"
    ok_eq "man -w extsnap finds the installed page" "$R/usr/share/man/man1/extsnap.1.gz" \
        "$(MANPATH=$R/usr/share/man man -w extsnap 2>&1)"
    ok_eq "man -w extsnap-delete finds the installed page" "$R/usr/share/man/man1/extsnap-delete.1.gz" \
        "$(MANPATH=$R/usr/share/man man -w extsnap-delete 2>&1)"
    ok_rc "dpkg -r in the scratch root" 0 \
        dpkg --admindir="$A" --instdir="$R" --log="$T/dpkg.log" -r extsnap >/dev/null 2>&1
    ok_rc "dpkg -r removed the binary" 1 test -e "$R/usr/bin/extsnap"
else
    fail "dpkg -i into the scratch root: $(oracle_err "$T/dpkg.out")"
fi
finish
