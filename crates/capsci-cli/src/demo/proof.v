(* Addition on the natural numbers is commutative, proved from scratch by induction. *)
Lemma add_0_r : forall n : nat, n + 0 = n.
Proof. induction n as [| n IH]; simpl; [reflexivity | rewrite IH; reflexivity]. Qed.

Lemma add_succ_r : forall n m : nat, n + S m = S (n + m).
Proof. induction n as [| n IH]; intros m; simpl; [reflexivity | rewrite IH; reflexivity]. Qed.

Theorem add_comm : forall n m : nat, n + m = m + n.
Proof.
  induction n as [| n IH]; intros m; simpl.
  - rewrite add_0_r. reflexivity.
  - rewrite IH, add_succ_r. reflexivity.
Qed.
