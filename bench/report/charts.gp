# Charts of one benchmark run, from the data files chart_data.awk writes.
#   gnuplot -e "dir='DATA_DIR'; out='OUT_STEM'; machine='TEXT'" charts.gp
# writes OUT_STEM-echo.{svg,png} (the sync-vs-async answer) and OUT_STEM-runtime.{svg,png}
# (file_read by reader, and the runtime workloads: eddy's and tokio's bars side by side).

servers = "sync epoll-loop uring-loop eddy-epoll eddy-uring tokio"
label(s) = s eq "sync" ? "sync (thread per connection)" : (s eq "tokio" ? "tokio 1.24" : (s eq "epoll-loop" ? "epoll loop, no runtime" : (s eq "uring-loop" ? "io_uring loop, no runtime" : s)))
color(s) = s eq "sync" ? "#d62728" : (s eq "eddy-epoll" ? "#1f77b4" : (s eq "tokio" ? "#ff7f0e" : (s eq "epoll-loop" ? "#7f7f7f" : (s eq "uring-loop" ? "#8c564b" : "#2ca02c"))))
# An empty panel that says so (plotting nothing at all is an error to gnuplot).
no_data = 'set label 1 "not measured in this run" at graph 0.5, graph 0.5 center; ' . \
          'unset logscale y; set yrange [0:1]; plot 2 notitle; unset label 1'
has(f) = system("test -s '" . f . "' && echo 1 || echo 0") + 0
echo(s) = dir . "/echo-" . s . ".dat"
# Whether runtime.dat has tokio's column (chart_data.awk writes it only when tokio ran).
runtime_tokio = system("awk 'NF >= 3 { n = 1 } END { print n + 0 }' '" . dir . "/runtime.dat' 2>/dev/null") + 0
# A runtime workload's tic: its name and, when both ran, eddy's figure over tokio's (a column
# read only once valid() says it holds a number, so a missing one drops no bar).
ratio_tic(w) = (valid(2) && valid(3)) ? sprintf("%s  %.2f×", w, column(2) / column(3)) : w
set datafile missing "-"
# The servers this run measured (an echo panel with none says so).
present = ""
do for [s in servers] {
    if (has(echo(s))) { present = present . " " . s }
}

do for [term in "svg png"] {
    if (term eq "svg") {
        set terminal svg size 1500,520 font "sans,13" background "white" noenhanced
    } else {
        set terminal pngcairo size 1500,520 font "sans,11" background "white" noenhanced
    }
    set output out . "-echo." . term
    set multiplot layout 1,3 title "TCP echo, 64-byte ping-pong, 2 server threads, load client on the same machine\n" . machine
    set logscale x 10
    set xlabel "concurrent connections"
    set grid
    set key bottom right opaque
    set format y "%.0s%c"
    set title "throughput (msgs/s, higher is better)"
    set yrange [0:*]
    if (strlen(present) == 0) { eval no_data } else { plot for [s in present] echo(s) using 1:2 with linespoints lw 2 pt 7 lc rgb color(s) title label(s) }
    set title "p99 latency (ms, lower is better)"
    set key top left opaque
    set logscale y 10
    set yrange [*:*]
    set format y "%g"
    if (strlen(present) == 0) { eval no_data } else { plot for [s in present] echo(s) using 1:3 with linespoints lw 2 pt 7 lc rgb color(s) title label(s) }
    set title "server memory (peak RSS MiB, lower is better)"
    if (strlen(present) == 0) { eval no_data } else { plot for [s in present] echo(s) using 1:4 with linespoints lw 2 pt 7 lc rgb color(s) title label(s) }
    unset multiplot
    unset logscale
    unset format

    if (term eq "svg") {
        set terminal svg size 1500,520 font "sans,13" background "white" noenhanced
    } else {
        set terminal pngcairo size 1500,520 font "sans,11" background "white" noenhanced
    }
    set output out . "-runtime." . term
    # file_read's five bars take a third of the width, the runtime workloads' clusters the rest.
    set multiplot title machine
    set origin 0, 0
    set size 0.32, 0.95
    set style data histograms
    set style fill solid 0.8 border -1
    set boxwidth 0.7
    set grid ytics
    unset key
    set xtics rotate by -30 left
    set yrange [0:*]
    set xlabel ""
    set offsets 0, 0, graph 0.1, 0
    set title "file_read: 1,000 × 64 KiB, warm cache (ms, lower is better)"
    if (has(dir . "/file_read.dat")) {
        plot dir . "/file_read.dat" using 2:xtic(1) lc rgb "#1f77b4", \
             "" using 0:2:(sprintf("%.1f", $2)) with labels offset 0,0.8
    } else {
        eval no_data
    }
    set origin 0.32, 0
    set size 0.68, 0.95
    set logscale y 10
    set yrange [1:*]
    if (!has(dir . "/runtime.dat")) {
        set title "runtime workloads (ns per operation, log scale, lower is better)"
        eval no_data
    } else {
        if (runtime_tokio) {
            # eddy and tokio side by side per workload; the tic says eddy's time as a fraction
            # of tokio's. Two bars and a gap of one per cluster: bar centres at -1/6 and +1/6.
            set title "runtime workloads, eddy vs tokio 1.24 in the same run (ns per op, log scale, lower is better)"
            set style histogram clustered gap 1
            set key top left opaque
            plot dir . "/runtime.dat" using 2:xtic(ratio_tic(strcol(1))) lc rgb "#2ca02c" title "eddy", \
                 "" using 3 lc rgb color("tokio") title label("tokio"), \
                 "" using ($0 - 1.0 / 6):2:(sprintf("%.3g", $2)) with labels offset 0,0.7 font ",9" notitle, \
                 "" using ($0 + 1.0 / 6):3:(sprintf("%.3g", $3)) with labels offset 0,0.7 font ",9" notitle
            unset key
            set style histogram clustered gap 2
        } else {
            set title "eddy runtime workloads (ns per operation, log scale, lower is better)"
            plot dir . "/runtime.dat" using 2:xtic(1) lc rgb "#2ca02c", \
                 "" using 0:2:(sprintf("%.3g", $2)) with labels offset 0,0.8
        }
    }
    unset multiplot
    unset logscale
    set offsets 0, 0, 0, 0
    unset xtics
    set xtics
}
