package conformance

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

// Upper-tail chi-square quantiles from standard tables (and, for df 2, the
// closed form -2·ln(alpha)).
func TestChiSquareCritical(t *testing.T) {
	for _, c := range []struct {
		df, alpha, want float64
	}{
		{1, 0.05, 3.841459},
		{2, 0.01, 9.210340},
		{4, 0.001, 18.466827},
		{10, 0.05, 18.307038},
		{2, 1e-6, -2 * math.Log(1e-6)},
		{2, 1e-9, -2 * math.Log(1e-9)},
	} {
		if got := chiSquareCritical(c.df, c.alpha); math.Abs(got-c.want) > 1e-5 {
			t.Errorf("chiSquareCritical(df %v, alpha %v) = %.6f, want %.6f", c.df, c.alpha, got, c.want)
		}
	}
}

// With one degree of freedom, X = (Z+√λ)², so its survival has a closed
// form in the normal CDF that the Poisson mixture must reproduce.
func TestNoncentralChiSquareSurvivalOneDF(t *testing.T) {
	phi := distuv.UnitNormal.CDF
	for _, c := range []struct{ x, lambda float64 }{
		{0.5, 0.1}, {3.84, 1}, {10, 5}, {23.9, 52}, {30, 200}, {5, 2000},
	} {
		r, s := math.Sqrt(c.x), math.Sqrt(c.lambda)
		want := phi(s-r) + phi(-s-r)
		if got := NoncentralChiSquareSurvival(c.x, 1, c.lambda); math.Abs(got-want) > 1e-9 {
			t.Errorf("NoncentralChiSquareSurvival(%v, df 1, λ %v) = %.12f, want %.12f", c.x, c.lambda, got, want)
		}
	}
	if got, want := NoncentralChiSquareSurvival(7, 3, 0), (distuv.ChiSquared{K: 3}).Survival(7); got != want {
		t.Errorf("λ = 0 gives %v, want the central survival %v", got, want)
	}
}

func TestChiSquareUniform(t *testing.T) {
	got, err := ChiSquareUniform([]int{10, 20, 30})
	if err != nil || got != 10 {
		t.Errorf("ChiSquareUniform(10, 20, 30) = %v, %v; want 10 (expected 20 each: (100+0+100)/20)", got, err)
	}
	for _, bad := range [][]int{{0, 0}, {5}, {3, -1}} {
		if _, err := ChiSquareUniform(bad); err == nil {
			t.Errorf("ChiSquareUniform(%v): no error", bad)
		}
	}
}

func TestPlanFairnessIsSmallest(t *testing.T) {
	for _, k := range []int{2, 3, 5} {
		p, err := PlanFairness(k, 1e-6, 0.99, 0.05)
		if err != nil {
			t.Fatal(err)
		}
		if p.Power < 0.99 {
			t.Errorf("k=%d: power %v at N=%d, want >= 0.99", k, p.Power, p.N)
		}
		if want := k <= exactMax; p.Exact != want {
			t.Errorf("k=%d: Exact = %v, want %v", k, p.Exact, want)
		}
		shares := SkewedShares(k, 0.05)
		below := NoncentralChiSquareSurvival(p.Critical, float64(k-1), noncentrality(shares, p.N-1))
		if p.Exact {
			below = multinomialRejection(p.N-1, shares, p.Critical)
		}
		if below >= 0.99 {
			t.Errorf("k=%d: N-1=%d already has power %v: N is not the smallest", k, p.N-1, below)
		}
		t.Logf("k=%d: N=%d critical=%.3f power=%.5f exact=%v", k, p.N, p.Critical, p.Power, p.Exact)
	}
	for _, bad := range []struct {
		k                  int
		alpha, power, skew float64
	}{{1, 1e-6, .99, .05}, {3, 0, .99, .05}, {3, 1e-6, 1, .05}, {3, 1e-6, .99, 0}, {2, 1e-6, .99, .5}} {
		if _, err := PlanFairness(bad.k, bad.alpha, bad.power, bad.skew); err == nil {
			t.Errorf("PlanFairness%v: no error", bad)
		}
	}
}

// The exact sum agrees with the chi-square approximation where that is
// good (a false-fail rate of 1e-6 at N = 5000) and with the normal closed
// form for two backends.
func TestMultinomialRejection(t *testing.T) {
	crit := chiSquareCritical(2, 1e-6)
	if got := multinomialRejection(5000, []float64{1. / 3, 1. / 3, 1. / 3}, crit); math.Abs(got-1e-6) > 0.02e-6 {
		t.Errorf("exact false-fail rate at N=5000, k=3: %.4g, want 1e-6 within 2%%", got)
	}
	// Two backends: X² = (a-b)²/N, a ~ Binomial(N, p).
	n, p := 4000, 0.53
	crit1 := chiSquareCritical(1, 1e-3)
	sd := math.Sqrt(float64(n) * p * (1 - p))
	half := math.Sqrt(crit1*float64(n)) / 2 // |a - N/2| above this fails
	z := func(a float64) float64 { return (a - float64(n)*p) / sd }
	// Continuity-corrected normal approximation of the binomial tails.
	want := distuv.UnitNormal.Survival(z(math.Floor(float64(n)/2+half)+0.5)) + distuv.UnitNormal.CDF(z(math.Ceil(float64(n)/2-half)-0.5))
	if got := multinomialRejection(n, []float64{p, 1 - p}, crit1); math.Abs(got-want) > 0.005 {
		t.Errorf("exact power for 2 backends: %.5f, normal approximation %.5f", got, want)
	}
}

// rejections simulates trials proxies sending n requests with shares ps and
// counts how often the plan's check fails them.
func rejections(t *testing.T, rng *rand.Rand, p FairnessPlan, ps []float64, n, trials int) float64 {
	t.Helper()
	p.N = n
	cum := make([]float64, len(ps))
	acc := 0.0
	for i, s := range ps {
		acc += s
		cum[i] = acc
	}
	rejected := 0
	counts := make([]int, len(ps))
	for range trials {
		clear(counts)
		for range n {
			u, i := rng.Float64(), 0
			for i < len(cum)-1 && u >= cum[i] {
				i++
			}
			counts[i]++
		}
		r, err := p.Check(counts)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Fair {
			rejected++
		}
	}
	return float64(rejected) / float64(trials)
}

// The planned power and false-fail rate hold for simulated proxies: a
// Monte Carlo check with a fixed seed (so the test is deterministic),
// within 4 standard errors.
func TestFairnessMonteCarlo(t *testing.T) {
	if testing.Short() {
		t.Skip("Monte Carlo")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const trials = 2000
	within := func(name string, got, want float64) {
		t.Helper()
		tol := 4 * math.Sqrt(want*(1-want)/trials)
		if math.Abs(got-want) > tol {
			t.Errorf("%s: simulated %.4f, computed %.4f (tolerance %.4f)", name, got, want, tol)
		} else {
			t.Logf("%s: simulated %.4f, computed %.4f", name, got, want)
		}
	}
	skewed := SkewedShares(3, 0.05)

	// The plan itself: a 5-point skew is caught at least 99% of the time.
	plan, err := PlanFairness(3, 1e-6, 0.99, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	within("power of the plan", rejections(t, rng, plan, skewed, plan.N, trials), plan.Power)

	// Where power is mid-range the simulation is most sensitive to an
	// error in the computation: a looser alpha, power about one half.
	mid, err := PlanFairness(3, 1e-3, 0.5, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	within("mid-range power", rejections(t, rng, mid, skewed, mid.N, trials), mid.Power)

	// With five backends the power is the noncentral chi-square's.
	five, err := PlanFairness(5, 1e-3, 0.5, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	within("mid-range power, five backends", rejections(t, rng, five, SkewedShares(5, 0.05), five.N, trials), five.Power)

	// A fair proxy fails at rate alpha (alpha large enough to simulate).
	null, err := PlanFairness(3, 0.05, 0.99, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	within("false-fail rate", rejections(t, rng, null, []float64{1. / 3, 1. / 3, 1. / 3}, null.N, trials), 0.05)
}
