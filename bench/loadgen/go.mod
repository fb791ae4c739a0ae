module bulwark.dev/bench/loadgen

go 1.22
