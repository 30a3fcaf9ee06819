# CSV (results_csv.awk) -> the data files charts.gp plots, written into directory `out`:
#   echo-<runtime>.dat   connections msgs_per_s p99_ms server_rss_mib   (sorted by connections)
#   file_read.dat        runtime ms
#   runtime.dat          "workload" value   (eddy's own workloads measured in ns)
BEGIN { FS = "," }
/^#/ || $1 == "runtime" { next }
$2 ~ /^echo_c[0-9]+$/ {
    c = substr($2, 7)
    f = out "/echo-" $1 ".dat"
    echo[f] = echo[f] sprintf("%d %s %.3f %s\n", c, $3, $6 / 1000, $7)
    next
}
$2 == "file_read" { printf "%s %s\n", $1, $3 > (out "/file_read.dat"); next }
$1 == "eddy" && $4 ~ /^ns\// { printf "\"%s\" %s\n", $2, $3 > (out "/runtime.dat"); next }
END {
    for (f in echo) {
        cmd = "sort -n > \"" f "\""
        printf "%s", echo[f] | cmd
        close(cmd)
    }
}
