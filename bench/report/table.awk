# CSV (results_csv.awk) -> Markdown tables: the echo family pivoted by connection count (one
# column group per server), file_read by reader, and every other workload as a row with one
# column per runtime (eddy, tokio) and, when both ran, the ratio eddy / tokio.
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
{
    if (!($2 in seen_w)) { seen_w[$2] = 1; works[++nw] = $2; unit[$2] = $4 }
    if (!($1 in seen_r)) { seen_r[$1] = 1; rts[++nrt] = $1 }
    value[$2, $1] = $3; more[$2, $1] = $9
}

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
    if (nw > 0) {
        # Every figure of these workloads is lower-is-better: a ratio below 1 is eddy ahead.
        ratio = ("eddy" in seen_r) && ("tokio" in seen_r)
        print "### Runtime workloads"
        print ""
        head = "| workload | unit |"; line = "|---|---|"
        for (i = 1; i <= nrt; i++) { head = head " " rts[i] " |"; line = line "---:|" }
        if (ratio) { head = head " eddy / tokio |"; line = line "---:|" }
        print head " more |"
        print line "---|"
        for (k = 1; k <= nw; k++) {
            w = works[k]; row = "| " w " | " unit[w] " |"; extra = ""
            for (i = 1; i <= nrt; i++) {
                r = rts[i]
                row = row " " ((w, r) in value ? value[w, r] : "–") " |"
                if (more[w, r] != "")
                    extra = extra (extra == "" ? "" : "; ") (nrt > 1 ? r ": " : "") more[w, r]
            }
            if (ratio) {
                e = value[w, "eddy"]; t = value[w, "tokio"]
                row = row " " (e != "" && t != "" && t + 0 > 0 ? sprintf("%.2f", e / t) : "–") " |"
            }
            print row " " extra " |"
        }
        print ""
    }
}
