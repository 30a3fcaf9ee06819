# CSV (results_csv.awk) -> Markdown tables: the echo family pivoted by connection count (one
# column group per server), file_read by reader, and every other workload as a row.
BEGIN { FS = "," }
/^#/ || $1 == "runtime" { next }
$2 ~ /^echo_c[0-9]+$/ {
    c = substr($2, 7) + 0
    if (!(c in seen_c)) { seen_c[c] = 1; cs[++nc] = c }
    if (!($1 in seen_s)) { seen_s[$1] = 1; servers[++ns] = $1 }
    rate[c, $1] = $3; p99[c, $1] = $6; rss[c, $1] = $7; cpu[c, $1] = $8
    next
}
$2 == "file_read" { files[++nf] = $1; file_ms[$1] = $3; next }
{ rows[++nr] = sprintf("| %s | %s | %s %s | %s |", $2, $1, $3, $4, $9) }

function fmt_rate(v) { return v == "" ? "–" : sprintf("%.1fk", v / 1000) }
function fmt_ms(v) { return v == "" ? "–" : (v < 1000 ? sprintf("%.3f", v / 1000) : (v < 10000 ? sprintf("%.2f", v / 1000) : sprintf("%.0f", v / 1000))) }
function fmt_mib(v) { return v == "" ? "–" : sprintf("%.1f", v) }
function cell(s, sep,   i, line) {
    line = ""
    for (i = 1; i <= ns; i++) line = line sep s
    return line
}
END {
    # insertion sort of the connection counts
    for (i = 2; i <= nc; i++) for (j = i; j > 1 && cs[j - 1] > cs[j]; j--) { t = cs[j]; cs[j] = cs[j - 1]; cs[j - 1] = t }
    if (nc > 0) {
        print "### TCP echo: msgs/s, p99 latency, server memory"
        print ""
        head = "| connections |"
        for (i = 1; i <= ns; i++) head = head " msgs/s " servers[i] " |"
        for (i = 1; i <= ns; i++) head = head " p99 ms " servers[i] " |"
        for (i = 1; i <= ns; i++) head = head " MiB " servers[i] " |"
        print head
        line = "|---:|"
        for (i = 1; i <= 3 * ns; i++) line = line "---:|"
        print line
        for (k = 1; k <= nc; k++) {
            c = cs[k]; row = "| " c " |"
            for (i = 1; i <= ns; i++) row = row " " fmt_rate(rate[c, servers[i]]) " |"
            for (i = 1; i <= ns; i++) row = row " " fmt_ms(p99[c, servers[i]]) " |"
            for (i = 1; i <= ns; i++) row = row " " fmt_mib(rss[c, servers[i]]) " |"
            print row
        }
        print ""
    }
    if (nf > 0) {
        print "### file_read: 1,000 files × 64 KiB, warm page cache, up to 64 at a time"
        print ""
        print "| reader | ms |"
        print "|---|---:|"
        for (i = 1; i <= nf; i++) printf "| %s | %s |\n", files[i], file_ms[files[i]]
        print ""
    }
    if (nr > 0) {
        print "### Runtime workloads"
        print ""
        print "| workload | runtime | figure | more |"
        print "|---|---|---:|---|"
        for (i = 1; i <= nr; i++) print rows[i]
        print ""
    }
}
