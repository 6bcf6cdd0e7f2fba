NAME          DEMO_LP
ROWS
 N  COST
 L  LIM1
 L  LIM2
 G  MIN3
COLUMNS
    X1        COST        -3.0   LIM1         1.0
    X1        LIM2         2.0   MIN3         1.0
    X2        COST        -5.0   LIM1         2.0
    X2        LIM2         1.0
RHS
    RHS       LIM1        14.0   LIM2        16.0
    RHS       MIN3         1.0
ENDATA
