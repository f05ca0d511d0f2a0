// Package conformance is proxyspec's spec suite for HTTP/1.1 reverse
// proxies: a registry of specs with stable IDs and metadata, the subjects
// that start a proxy under test (Handler, Command, Container), the per-spec
// environment (fake backends, the proxy, a raw client, evidence), and the
// reports.
//
// # Running the suite
//
// From an implementer's go test:
//
//	func TestConformance(t *testing.T) {
//		conformance.Test(t, conformance.Config{
//			Subject: conformance.Handler("mine", func(t conformance.Topology) (http.Handler, error) {
//				return myproxy.New(t.Backends...)
//			}),
//		})
//	}
//
// Inside one's own Ginkgo suite: var _ = conformance.Register(&cfg), and
// under ginkgo -p conformance.Cleanup() from every process. From a
// plain main (as `proxyspec run` does): conformance.Run(cfg, verbose).
//
// A run executes the specs of cfg.Profile that match cfg.LabelFilter (labels:
// feature, level, profiles, "scenario" for scenario specs) and cfg.Focus (a
// regexp on the ID). Its verdict, Report.ExitCode, fails only on MUST specs;
// setup failures make it ExitSetup.
//
// # Scenarios
//
// The YAML scenarios of package scenarios (built in, plus cfg.Scenarios
// directories) run as specs next to the Go ones, with the same metadata,
// states and evidence; a malformed file stops the run before it starts.
//
// # Writing specs
//
// Specs live in files named spec_<feature>.go, one feature area per file.
// A file registers its group in init and declares specs on the Suite; it
// touches no other file:
//
//	func init() {
//		addGroup("hop-by-hop", func(s *Suite) {
//			s.It(Meta{
//				ID:       "hop-by-hop/request/te",  // stable, unique, no spaces
//				Title:    "does not forward TE",    // what the proxy must do
//				Level:    MUST,                     // MUST, SHOULD, MAY
//				Source:   "RFC 9110 §7.6.1: ...",   // where the rule comes from
//				Needs:    []Feature{...},           // optional: subject features needed
//				Profiles: []Profile{ProfileSeed, ProfileRFC9110},
//			}, func(e *Env) {
//				e.Start(TopologyRequest{Backends: 1})
//				x := e.Get("/", "TE: trailers")
//				Expect(x.Status()).To(Equal(200))
//				Expect(e.ReceivedBy("a")[0].Has("TE")).To(BeFalse())
//			})
//		})
//	}
//
// Meta.Feature defaults to the group name. A list of similar cases is a
// Table: a base Meta, a body taking one argument, and an Entry per case with
// at least its own ID and Title.
//
// The group function only declares: it runs once to build the Catalog
// (`proxyspec list` needs no run) and once per Register. Every spec gets a
// fresh Env, its own backends and its own proxy, so specs run in parallel
// under `ginkgo -p`; never share mutable state between specs.
//
// Spec files dot-import Gomega only: this package's Entry and Report would
// clash with Ginkgo's, so use ginkgo.By and the like qualified.
//
// # What a spec may rely on
//
//   - Timeouts come from the topology (e.ConnectTimeout, e.ReadTimeout,
//     e.Within(d) for d times the margin), never from guesses; the client's
//     reads are bounded by e.ResponseTimeout.
//   - After the body, every RFC 9112 violation any backend recorded fails
//     the spec ("the proxy sent malformed HTTP to backend a: rule ..."), and
//     the evidence (requests sent, bytes each backend received, responses,
//     the proxy's output) is attached to the spec's report.
//   - A subject lacking a feature in Meta.Needs, or implied by the topology
//     (a path prefix, several backends, short timeouts), makes the spec "not
//     supported", not failed. A proxy or backend that does not start makes it
//     "setup-failed".
//   - e.Profile() says which profile runs, for profile-specific expectations.
//   - A failure to tear down (a backend's Close, a subject's Stop) is noted
//     in the spec's report, never turned into a verdict.
package conformance
