; Two integers: their sum is 10, one is greater than 2, the other smaller than it.
(set-logic QF_LIA)
(declare-const x Int)
(declare-const y Int)
(assert (! (> x 2) :named x_gt_2))
(assert (! (< y x) :named y_lt_x))
(assert (! (= (+ x y) 10) :named sum_10))
(check-sat)
