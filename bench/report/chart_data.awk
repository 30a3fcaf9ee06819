# CSV (results_csv.awk) -> the data files charts.gp plots, written into directory `out`:
#   echo-<runtime>.dat   connections msgs_per_s p99_ms server_rss_mib   (sorted by connections)
#   file_read.dat        runtime ms
#   runtime.dat          "workload" eddy tokio   (the workloads measured in ns; "-" where a
#                        runtime has no figure, and no tokio column when no tokio row ran)
BEGIN { FS = "," }
/^#/ || $1 == "runtime" { next }
$2 ~ /^echo_c[0-9]+$/ {
    c = substr($2, 7)
    f = out "/echo-" $1 ".dat"
    echo[f] = echo[f] sprintf("%d %s %.3f %s\n", c, $3, $6 / 1000, $7)
    next
}
$2 == "file_read" { printf "%s %s\n", $1, $3 > (out "/file_read.dat"); next }
($1 == "eddy" || $1 == "tokio") && $4 ~ /^ns\// {
    if (!($2 in seen)) { seen[$2] = 1; works[++nw] = $2 }
    value[$2, $1] = $3
    if ($1 == "tokio") tokio = 1
    next
}
END {
    for (k = 1; k <= nw; k++) {
        w = works[k]
        e = (w, "eddy") in value ? value[w, "eddy"] : "-"
        t = (w, "tokio") in value ? value[w, "tokio"] : "-"
        if (tokio) printf "\"%s\" %s %s\n", w, e, t > (out "/runtime.dat")
        else if (e != "-") printf "\"%s\" %s\n", w, e > (out "/runtime.dat")
    }
    for (f in echo) {
        cmd = "sort -n > \"" f "\""
        printf "%s", echo[f] | cmd
        close(cmd)
    }
}
