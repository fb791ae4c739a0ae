// Command etcd runs a single-member etcd server through the upstream
// go.etcd.io/etcd/server/v3/embed package, at the version that the pinned
// k8s.io/kubernetes requires. It is meant for throw-away test clusters: it
// listens on loopback only and, with -unsafe-no-fsync, trades durability for speed.
package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	dataDir := flag.String("data-dir", "", "data directory (required)")
	clientURL := flag.String("listen-client-url", "http://127.0.0.1:2379", "client URL to listen on and advertise")
	peerURL := flag.String("listen-peer-url", "http://127.0.0.1:2380", "peer URL to listen on and advertise")
	logLevel := flag.String("log-level", "warn", "debug, info, warn, error")
	noFsync := flag.Bool("unsafe-no-fsync", false, "disable fsync (test clusters only)")
	readyTimeout := flag.Duration("ready-timeout", 60*time.Second, "how long to wait for the member to become ready")
	flag.Parse()
	if *dataDir == "" {
		fail("-data-dir is required")
	}
	curl, err := url.Parse(*clientURL)
	if err != nil {
		fail("bad -listen-client-url: %v", err)
	}
	purl, err := url.Parse(*peerURL)
	if err != nil {
		fail("bad -listen-peer-url: %v", err)
	}

	cfg := embed.NewConfig()
	cfg.Name = "bulwark-e2e"
	cfg.Dir = *dataDir
	cfg.ListenClientUrls = []url.URL{*curl}
	cfg.AdvertiseClientUrls = []url.URL{*curl}
	cfg.ListenPeerUrls = []url.URL{*purl}
	cfg.AdvertisePeerUrls = []url.URL{*purl}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = *logLevel
	cfg.UnsafeNoFsync = *noFsync

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fail("start etcd: %v", err)
	}
	defer e.Close()

	select {
	case <-e.Server.ReadyNotify():
		fmt.Fprintf(os.Stderr, "etcd ready, serving clients on %s\n", curl)
	case <-time.After(*readyTimeout):
		e.Server.Stop()
		fail("etcd not ready after %s", *readyTimeout)
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case s := <-sig:
		fmt.Fprintf(os.Stderr, "etcd: got %s, stopping\n", s)
	case err := <-e.Err():
		fail("etcd: %v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "etcd: "+format+"\n", args...)
	os.Exit(1)
}
