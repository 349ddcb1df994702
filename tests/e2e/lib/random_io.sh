# Random qemu-io commands for the commit comparisons (t_img_commit.sh,
# t_img_commit_deep.sh). Uses bash's $RANDOM: seed it (RANDOM=n) first, and
# call in the shell itself (a subshell would not advance it).

# rnd N: R = random 0 .. N-1.
rnd() { R=$((RANDOM % $1)); }

# random_ops SIZE CS N: N random commands over [0, SIZE) into the array
# RANDOM_OPS (qemu-io -c arguments): 512-aligned (often not cluster
# aligned), up to 3 clusters of CS bytes long; writes of a random pattern
# (6 in 10), write -z, write -z -u, discard.
random_ops() {
  local size=$1 cs=$2 n=$3 i off len
  RANDOM_OPS=()
  for ((i = 0; i < n; i++)); do
    rnd $((3 * cs / 512)); len=$(( (1 + R) * 512 ))
    rnd $((size / 512)); off=$((R * 512))
    (( off + len > size )) && len=$((size - off))
    (( len <= 0 )) && continue
    rnd 10
    if ((R < 6)); then rnd 250; RANDOM_OPS+=(-c "write -P $((1 + R)) $off $len")
    elif ((R == 6)); then RANDOM_OPS+=(-c "write -z $off $len")
    elif ((R == 7)); then RANDOM_OPS+=(-c "write -z -u $off $len")
    else RANDOM_OPS+=(-c "discard $off $len")
    fi
  done
}
