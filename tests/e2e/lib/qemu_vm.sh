# A throw-away QEMU for the online tests (t_online_*.sh): qemu-system-x86_64
# -machine none with the QMP socket extsnap talks to, plus a second QMP
# monitor on QEMU's stdin/stdout that the test drives itself (bash coproc:
# no netcat, socat or python needed). Source after lib/common.sh.
#
#   vm_start SOCK QEMU-ARGS...  start it; SOCK is extsnap's QMP socket
#   vm_qmp CMD [ARGS-JSON]       run a QMP command on the test's channel;
#                                prints the "return" value as compact JSON,
#                                fails (status 1, error on stderr) on an error
#   vm_hmp LINE                  human-monitor-command LINE
#   vm_quit                      quit and wait (QEMU closes its images)
#   vm_kill                      SIGKILL and wait
# QEMU_PID is QEMU's pid. Events seen on the test's channel are appended to
# $T/vm-events, other output on that channel (qemu-io's) to $T/vm-stdout.
# VM_PRE_EXEC (an array, default empty): a command that ends by exec'ing
# its arguments, run before QEMU (e.g. unshare into a mount namespace);
# QEMU keeps its pid.

VM_PRE_EXEC=()

QEMU_PID=
VM_IN=
VM_OUT=

vm_start() {
    local sock=$1
    shift
    rm -f "$sock"
    coproc VM {
        exec "${VM_PRE_EXEC[@]}" qemu-system-x86_64 -machine none -nodefaults -display none \
            -qmp "unix:$sock,server=on,wait=off" -qmp stdio "$@" 2>>"$T/qemu.stderr"
    }
    QEMU_PID=$VM_PID
    # bash closes coproc descriptors in subshells ($(...)): use copies.
    exec {VM_IN}<&"${VM[0]}" {VM_OUT}>&"${VM[1]}"
    local greeting
    if ! read -r -t 20 greeting <&"$VM_IN" || [[ $greeting != *'"QMP"'* ]]; then
        echo "ERROR: QEMU did not start: $(cat "$T/qemu.stderr" 2>/dev/null)" >&2
        exit 1
    fi
    vm_qmp qmp_capabilities >/dev/null
    local i
    for ((i = 0; i < 500; i++)); do
        [[ -S $sock ]] && return 0
        sleep 0.01
    done
    echo "ERROR: QMP socket $sock did not appear" >&2
    exit 1
}

# Read the test channel until the reply with id $1; other lines are events
# or qemu-io output, logged.
vm_reply() {
    local id=$1 line
    while read -r -t 60 line <&"$VM_IN"; do
        if [[ $line == '{'*'"id": "'"$id"'"'* ]]; then
            printf '%s\n' "$line"
            return 0
        fi
        if [[ $line == '{"timestamp"'* || $line == '{"event"'* ]]; then
            printf '%s\n' "$line" >>"$T/vm-events"
        else
            printf '%s\n' "$line" >>"$T/vm-stdout"
        fi
    done
    echo "ERROR: no reply from QEMU to request $id" >&2
    return 1
}

vm_qmp() {
    local cmd=$1 args=${2:-}
    # Ids must stay unique across subshells ($(vm_qmp ...)): a counter file.
    local n
    n=$(( $(cat "$T/vm-seq" 2>/dev/null || echo 0) + 1 ))
    echo "$n" >"$T/vm-seq"
    local id="t$n" req reply
    if [[ -n $args ]]; then
        req="{\"execute\": \"$cmd\", \"arguments\": $args, \"id\": \"$id\"}"
    else
        req="{\"execute\": \"$cmd\", \"id\": \"$id\"}"
    fi
    printf '%s\n' "$req" >&"$VM_OUT"
    reply=$(vm_reply "$id") || return 1
    if jq -e 'has("error")' >/dev/null <<<"$reply"; then
        echo "QMP $cmd: $(jq -c .error <<<"$reply")" >&2
        return 1
    fi
    jq -c '.return' <<<"$reply"
}

# Prints the monitor's output; fails when it starts with "Error" (HMP
# reports failures as text). qemu-io's own results go to QEMU's stdout,
# which is block-buffered: check data with qemu-img/qemu-io after vm_quit.
vm_hmp() {
    local line out
    line=$(jq -n --arg l "$1" '{"command-line": $l}')
    out=$(vm_qmp human-monitor-command "$line") || return 1
    out=$(jq -r . <<<"$out")
    printf '%s' "$out"
    [[ $out != Error* ]]
}

vm_wait_gone() {
    local i
    for ((i = 0; i < 1000; i++)); do
        kill -0 "$QEMU_PID" 2>/dev/null || break
        sleep 0.01
    done
    wait "$QEMU_PID" 2>/dev/null || true
    exec {VM_IN}<&- {VM_OUT}>&-
    QEMU_PID=
}

vm_quit() {
    [[ -n $QEMU_PID ]] || return 0
    printf '{"execute": "quit"}\n' >&"$VM_OUT" 2>/dev/null || true
    vm_wait_gone
}

vm_kill() {
    [[ -n $QEMU_PID ]] || return 0
    kill -KILL "$QEMU_PID" 2>/dev/null || true
    vm_wait_gone
}

# The file names of the chain of a device (or root node), active layer
# first, as QEMU reports them (json: names reduced to their plain file).
vm_chain_files() {
    vm_qmp query-block | jq -r --arg d "$1" '
        .[] | select(.device == $d or .qdev == $d) | .inserted.image
        | recurse(."backing-image"; . != null) | .filename
        | if startswith("json:") then (.[5:] | fromjson
              | [recurse(.file // .image; . != null) | .filename? // empty][0])
          else . end'
}
