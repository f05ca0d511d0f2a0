package conformance

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// A fairness check asks whether a proxy spreads requests evenly over k
// backends. Its false-fail rate and its power are stated up front, and the
// number of requests follows from them: with Pearson's chi-square
// goodness-of-fit test against the uniform distribution, the statistic is
// (asymptotically) central chi-square with k-1 degrees of freedom under a
// fair proxy, and noncentral chi-square with noncentrality
// λ = N·Σ(p_i−1/k)²/(1/k) under a proxy whose shares are p. Power grows
// with λ, so the smallest N reaching the wanted power is found by search.

// FairnessPlan is a chi-square test of uniformity with its sample size.
type FairnessPlan struct {
	// Backends is k, the number of categories.
	Backends int `json:"backends"`
	// Alpha is the false-fail rate: the probability that a perfectly fair
	// (uniformly random) proxy fails the check.
	Alpha float64 `json:"alpha"`
	// Skew is the effect the check must catch: one backend getting
	// 1/k + Skew of the requests and the others sharing the rest evenly.
	Skew float64 `json:"skew"`
	// Power is the probability that a proxy skewed by Skew fails the check,
	// at N requests (at least the power asked for).
	Power float64 `json:"power"`
	// N is the number of requests to send.
	N int `json:"n"`
	// Critical is the value of the statistic above which the check fails.
	Critical float64 `json:"critical"`
	// Exact says Power was summed over the multinomial distribution of the
	// counts rather than taken from the noncentral chi-square
	// approximation (it is, for up to 3 backends).
	Exact bool `json:"exact"`
}

// PlanFairness returns the smallest test of uniformity over k backends with
// false-fail rate alpha that catches a skew (one backend at 1/k + skew) with
// at least the given power. The critical value is the chi-square quantile
// (for k=3 and N about 5000 the exact false-fail rate is within 1% of
// alpha); the power is exact for up to 3 backends, asymptotic beyond.
func PlanFairness(k int, alpha, power, skew float64) (FairnessPlan, error) {
	switch {
	case k < 2:
		return FairnessPlan{}, fmt.Errorf("fairness plan: %d backends: need at least 2", k)
	case !(alpha > 0 && alpha < 1):
		return FairnessPlan{}, fmt.Errorf("fairness plan: alpha %v: want 0 < alpha < 1", alpha)
	case !(power > alpha && power < 1):
		return FairnessPlan{}, fmt.Errorf("fairness plan: power %v: want alpha < power < 1", power)
	case !(skew > 0 && skew < 1-1/float64(k)):
		return FairnessPlan{}, fmt.Errorf("fairness plan: skew %v: want 0 < skew < %v", skew, 1-1/float64(k))
	}
	df := float64(k - 1)
	crit := chiSquareCritical(df, alpha)
	perRequest := noncentrality(SkewedShares(k, skew), 1)
	pow := func(n int) float64 { return NoncentralChiSquareSurvival(crit, df, float64(n)*perRequest) }

	// Power is increasing in N: double until it is reached, then bisect.
	hi := 1
	for pow(hi) < power {
		if hi > 1<<40 {
			return FairnessPlan{}, fmt.Errorf("fairness plan: no sample size reaches power %v against skew %v", power, skew)
		}
		hi *= 2
	}
	hi = firstReaching(hi/2, hi, pow, power) // pow(hi/2) < power, or hi/2 == 0
	plan := FairnessPlan{Backends: k, Alpha: alpha, Skew: skew, Power: pow(hi), N: hi, Critical: crit}
	if k > exactMax {
		return plan, nil
	}

	// The noncentral chi-square is a large-sample approximation, a little
	// optimistic here (0.988 instead of 0.99 at k=3): with few backends
	// the multinomial distribution itself is summed, and N grows until the
	// exact power is reached. Exact power is not strictly monotone in N
	// (the counts are discrete), but its wiggles are far below the step.
	ps := SkewedShares(k, skew)
	exact := func(n int) float64 { return multinomialRejection(n, ps, crit) }
	lo, step := hi-1, max(1, hi/64)
	for exact(hi) < power {
		lo, hi = hi, hi+step
	}
	hi = firstReaching(lo, hi, exact, power)
	plan.N, plan.Power, plan.Exact = hi, exact(hi), true
	return plan, nil
}

// firstReaching bisects (lo, hi] for the smallest n with f(n) >= target,
// f taken as increasing and f(hi) >= target.
func firstReaching(lo, hi int, f func(int) float64, target float64) int {
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if f(mid) >= target {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

// exactMax is the most backends for which power is computed exactly: the
// sum runs over k-1 dimensions of counts.
const exactMax = 3

// multinomialRejection is the exact probability that n requests spread
// with shares ps (2 or 3 of them) give a chi-square statistic against
// uniform above crit. Counts more than 10 standard deviations from their
// mean are left out: their probability is below 1e-20.
func multinomialRejection(n int, ps []float64, crit float64) float64 {
	lf := make([]float64, n+1) // log n!
	for i := 2; i <= n; i++ {
		lf[i] = lf[i-1] + math.Log(float64(i))
	}
	exp := float64(n) / float64(len(ps))
	sq := func(c int) float64 { d := float64(c) - exp; return d * d / exp }
	window := func(p float64) (int, int) {
		m, sd := float64(n)*p, math.Sqrt(float64(n)*p*(1-p))
		return max(0, int(m-10*sd)), min(n, int(m+10*sd)+1)
	}
	lp := make([]float64, len(ps))
	for i, p := range ps {
		lp[i] = math.Log(p)
	}
	rej := 0.0
	lo0, hi0 := window(ps[0])
	for a := lo0; a <= hi0; a++ {
		if len(ps) == 2 {
			if b := n - a; sq(a)+sq(b) > crit {
				rej += math.Exp(lf[n] - lf[a] - lf[b] + float64(a)*lp[0] + float64(b)*lp[1])
			}
			continue
		}
		lo1, hi1 := window(ps[1])
		for b := lo1; b <= hi1 && a+b <= n; b++ {
			if c := n - a - b; sq(a)+sq(b)+sq(c) > crit {
				rej += math.Exp(lf[n] - lf[a] - lf[b] - lf[c] + float64(a)*lp[0] + float64(b)*lp[1] + float64(c)*lp[2])
			}
		}
	}
	return rej
}

// FairnessResult is the outcome of a fairness check on observed counts.
type FairnessResult struct {
	Plan   FairnessPlan `json:"plan"`
	Counts []int        `json:"counts"`
	// Statistic is Pearson's chi-square statistic of Counts against the
	// uniform distribution.
	Statistic float64 `json:"statistic"`
	// P is the p-value: the probability that a fair proxy produces a
	// statistic at least this large.
	P float64 `json:"p"`
	// Fair is false when Statistic exceeds the plan's critical value.
	Fair bool `json:"fair"`
}

// Check tests counts (one per backend) for uniformity.
func (p FairnessPlan) Check(counts []int) (FairnessResult, error) {
	if len(counts) != p.Backends {
		return FairnessResult{}, fmt.Errorf("fairness check: %d counts for %d backends", len(counts), p.Backends)
	}
	stat, err := ChiSquareUniform(counts)
	if err != nil {
		return FairnessResult{}, err
	}
	pv := distuv.ChiSquared{K: float64(p.Backends - 1)}.Survival(stat)
	return FairnessResult{Plan: p, Counts: counts, Statistic: stat, P: pv, Fair: stat <= p.Critical}, nil
}

func (r FairnessResult) String() string {
	return fmt.Sprintf("counts %v over %d backends: chi-square %.2f (critical %.2f), p = %.3g; alpha %.g, power %.4f against a %.0f-point skew at N = %d",
		r.Counts, r.Plan.Backends, r.Statistic, r.Plan.Critical, r.P, r.Plan.Alpha, r.Plan.Power, 100*r.Plan.Skew, r.Plan.N)
}

// ChiSquareUniform is Pearson's chi-square statistic of counts against
// equal expected counts.
func ChiSquareUniform(counts []int) (float64, error) {
	total := 0
	for i, c := range counts {
		if c < 0 {
			return 0, fmt.Errorf("chi-square: count %d is negative (%d)", i, c)
		}
		total += c
	}
	if total == 0 || len(counts) < 2 {
		return 0, fmt.Errorf("chi-square: counts %v: need at least 2 categories and 1 observation", counts)
	}
	exp := float64(total) / float64(len(counts))
	stat := 0.0
	for _, c := range counts {
		d := float64(c) - exp
		stat += d * d / exp
	}
	return stat, nil
}

// SkewedShares are the shares of k backends when the first gets 1/k + skew
// and the others split the rest evenly.
func SkewedShares(k int, skew float64) []float64 {
	ps := make([]float64, k)
	ps[0] = 1/float64(k) + skew
	for i := 1; i < k; i++ {
		ps[i] = (1 - ps[0]) / float64(k-1)
	}
	return ps
}

// noncentrality is λ of the chi-square statistic for n requests spread
// with shares ps, tested against uniform shares.
func noncentrality(ps []float64, n int) float64 {
	p0 := 1 / float64(len(ps))
	l := 0.0
	for _, p := range ps {
		l += (p - p0) * (p - p0) / p0
	}
	return float64(n) * l
}

// NoncentralChiSquareSurvival is P(X > x) for X noncentral chi-square with
// df degrees of freedom and noncentrality lambda, as the Poisson mixture
// Σ_j Pois(j; λ/2)·P(χ²_{df+2j} > x). gonum has no noncentral chi-square;
// summing survivals rather than subtracting a CDF from 1 keeps the
// precision where power is close to 1.
func NoncentralChiSquareSurvival(x, df, lambda float64) float64 {
	if lambda == 0 {
		return distuv.ChiSquared{K: df}.Survival(x)
	}
	m := lambda / 2
	pois := distuv.Poisson{Lambda: m}
	// The Poisson weights outside m ± 12σ (+ a constant for small m) sum
	// to well below 1e-16.
	spread := 12*math.Sqrt(m) + 20
	lo, hi := max(0, math.Floor(m-spread)), math.Ceil(m+spread)
	s := 0.0
	for j := lo; j <= hi; j++ {
		s += pois.Prob(j) * distuv.ChiSquared{K: df + 2*j}.Survival(x)
	}
	return min(s, 1)
}

// chiSquareCritical is the x with P(χ²_df > x) = alpha, found by bisection
// on the survival function: Quantile(1-alpha) would lose alpha's precision
// in the subtraction for the small alphas a gate needs.
func chiSquareCritical(df, alpha float64) float64 {
	d := distuv.ChiSquared{K: df}
	lo, hi := 0.0, df+1
	for d.Survival(hi) > alpha {
		hi *= 2
	}
	for range 200 {
		mid := (lo + hi) / 2
		if d.Survival(mid) > alpha {
			lo = mid
		} else {
			hi = mid
		}
		if hi-lo <= 1e-12*hi {
			break
		}
	}
	return (lo + hi) / 2
}
