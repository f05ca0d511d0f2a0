package proxy

import (
	"sync"
	"testing"
)

func TestRoundRobinWindows(t *testing.T) {
	for n := 1; n <= 5; n++ {
		var rr RoundRobin
		for w := 0; w < 4; w++ {
			hits := make([]int, n)
			for range n {
				hits[rr.Next(nil, n)]++
			}
			for i, h := range hits {
				if h != 1 {
					t.Fatalf("n=%d window %d: backend %d chosen %d times, want 1 (%v)", n, w, i, h, hits)
				}
			}
		}
	}
}

func TestRoundRobinConcurrentIsExact(t *testing.T) {
	const n, workers, each = 3, 8, 300
	var rr RoundRobin
	var mu sync.Mutex
	hits := make([]int, n)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]int, n)
			for range each {
				local[rr.Next(nil, n)]++
			}
			mu.Lock()
			for i := range local {
				hits[i] += local[i]
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	for i, h := range hits {
		if h != workers*each/n {
			t.Fatalf("backend %d chosen %d times, want %d (%v)", i, h, workers*each/n, hits)
		}
	}
}

func BenchmarkRoundRobinNext(b *testing.B) {
	var rr RoundRobin
	for b.Loop() {
		rr.Next(nil, 3)
	}
}

func BenchmarkRoundRobinNextParallel(b *testing.B) {
	var rr RoundRobin
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rr.Next(nil, 3)
		}
	})
}
