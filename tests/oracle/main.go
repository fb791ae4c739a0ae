// Command psa-oracle judges pods with the upstream pod-security-admission library, so
// that Bulwark's Python implementation can be compared with the reference.
//
// Input: one Pod per line, as JSON, on standard input.
// Output: one JSON object per input line, in the same order:
//
//	{"baseline": ["hostPorts", ...], "restricted": [...]}
//
// naming every check that fails at that level (version "latest"), or {"error": "..."}
// when the line is not a Pod. Before judging, a volume without any source becomes an
// emptyDir, as the API server's defaulting makes it before admission runs; no other
// defaulting changes a Pod Security verdict that Bulwark's tests depend on.
//
// The library's results carry no check ids, so each check is run on its own; the
// library's own evaluator runs too, and a disagreement between the two is reported as an
// error rather than papered over.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	kjson "sigs.k8s.io/json"
)

// namedCheck is one check's newest version, with the id the library registers it under.
type namedCheck struct {
	id    policy.CheckID
	level api.Level
	run   policy.CheckPodFn
	hides []policy.CheckID
}

// checksAt lists the checks that run at a level, newest versions only; at restricted,
// the baseline checks that a restricted check overrides are left out, as the library does.
func checksAt(all []namedCheck, level api.Level) []namedCheck {
	hidden := map[policy.CheckID]bool{}
	if level == api.LevelRestricted {
		for _, c := range all {
			for _, id := range c.hides {
				hidden[id] = true
			}
		}
	}
	var out []namedCheck
	for _, c := range all {
		if c.level == api.LevelRestricted && level != api.LevelRestricted {
			continue
		}
		if !hidden[c.id] {
			out = append(out, c)
		}
	}
	return out
}

func newest(checks []policy.Check) []namedCheck {
	var out []namedCheck
	for _, c := range checks {
		last := c.Versions[len(c.Versions)-1]
		out = append(out, namedCheck{c.ID, c.Level, last.CheckPod, last.OverrideCheckIDs})
	}
	return out
}

func judge(pod *corev1.Pod, evaluator policy.Evaluator, perLevel map[api.Level][]namedCheck) (map[string][]string, error) {
	verdict := map[string][]string{}
	for _, level := range []api.Level{api.LevelBaseline, api.LevelRestricted} {
		failed := []string{}
		for _, c := range perLevel[level] {
			if !c.run(&pod.ObjectMeta, &pod.Spec).Allowed {
				failed = append(failed, string(c.id))
			}
		}
		sort.Strings(failed)

		lv := api.LevelVersion{Level: level, Version: api.LatestVersion()}
		aggregate := policy.AggregateCheckResults(evaluator.EvaluatePod(lv, &pod.ObjectMeta, &pod.Spec))
		if len(aggregate.ForbiddenReasons) != len(failed) {
			return nil, fmt.Errorf("%s: the evaluator found %d failures, the checks one by one %v",
				level, len(aggregate.ForbiddenReasons), failed)
		}
		verdict[string(level)] = failed
	}
	return verdict, nil
}

// defaulted applies the API server's one defaulting that matters here: a volume that
// names no source is an emptyDir.
func defaulted(pod *corev1.Pod) *corev1.Pod {
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].VolumeSource == (corev1.VolumeSource{}) {
			pod.Spec.Volumes[i].EmptyDir = &corev1.EmptyDirVolumeSource{}
		}
	}
	return pod
}

func main() {
	checks := policy.DefaultChecks()
	evaluator, err := policy.NewEvaluator(checks, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "psa-oracle:", err)
		os.Exit(2)
	}
	all := newest(checks)
	perLevel := map[api.Level][]namedCheck{
		api.LevelBaseline:   checksAt(all, api.LevelBaseline),
		api.LevelRestricted: checksAt(all, api.LevelRestricted),
	}

	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	encoder := json.NewEncoder(out)
	for in.Scan() {
		var reply any
		pod := &corev1.Pod{}
		// Case-sensitive decoding, as the API server does it.
		if err := kjson.UnmarshalCaseSensitivePreserveInts(in.Bytes(), pod); err != nil {
			reply = map[string]string{"error": err.Error()}
		} else if verdict, err := judge(defaulted(pod), evaluator, perLevel); err != nil {
			reply = map[string]string{"error": err.Error()}
		} else {
			reply = verdict
		}
		// Flush every reply: the caller waits for each answer before sending the next pod.
		if err := encoder.Encode(reply); err != nil || out.Flush() != nil {
			fmt.Fprintln(os.Stderr, "psa-oracle: cannot write the reply")
			os.Exit(2)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "psa-oracle:", err)
		os.Exit(2)
	}
}
