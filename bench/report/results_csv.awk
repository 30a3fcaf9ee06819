# RESULT lines (shared/SUITE.md) -> CSV rows:
#   runtime,workload,value,unit,p50_us,p99_us,server_rss_mib,server_cpu_us_per_msg,extra
# `extra` keeps any other key=value figures, separated by spaces. Other lines are ignored.
BEGIN { OFS = "," }
$1 == "RESULT" && NF >= 5 {
    p50 = p99 = rss = cpu = ""; extra = ""
    for (i = 6; i <= NF; i++) {
        split($i, kv, "=")
        if (kv[1] == "p50_us") p50 = kv[2]
        else if (kv[1] == "p99_us") p99 = kv[2]
        else if (kv[1] == "server_rss_mib") rss = kv[2]
        else if (kv[1] == "server_cpu_us_per_msg") cpu = kv[2]
        else extra = extra (extra == "" ? "" : " ") $i
    }
    print $2, $3, $4, $5, p50, p99, rss, cpu, extra
}
