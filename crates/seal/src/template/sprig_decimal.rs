//! sprig's `add1f`, `addf`, `subf`, `mulf` and `divf`: each operand made a shopspring/decimal
//! (v1.4.0) from its float64 (`NewFromFloat`: the shortest digits that give the float back), the
//! operation done exactly in decimal (division rounded half away from zero to 16 places, as
//! `Decimal.Div` does), and the result turned back into the nearest float64.
//!
//! A decimal here is an integer times a power of ten. The digits of a chain of operations grow
//! with its length (a product of 1,000 operands of 17 digits has 17,000); past
//! [`MAX_DIGITS`] the call is an error rather than a slow big-number computation.

use num_bigint::{BigInt, Sign};

/// Most digits of an intermediate result (Go has no bound; a template reaching it is absurd).
pub const MAX_DIGITS: u64 = 5_000;

/// `Decimal.Div`'s precision (`DivisionPrecision`).
const DIVISION_PRECISION: i64 = 16;

#[derive(Clone, Debug)]
struct Decimal {
    value: BigInt,
    exp: i64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

fn ten_pow(n: i64) -> BigInt {
    BigInt::from(10u8).pow(u32::try_from(n).unwrap_or(u32::MAX))
}

impl Decimal {
    /// `decimal.NewFromFloat` (which panics on NaN and infinities).
    fn from_float(f: f64) -> Result<Decimal, String> {
        if !f.is_finite() {
            return Err(format!(
                "Cannot create a Decimal from {}",
                super::value::format_float_g(f)
            ));
        }
        if f == 0.0 {
            return Ok(Decimal {
                value: BigInt::from(0),
                exp: 0,
            });
        }
        // The shortest digits that read back as `f`, chosen as Go's roundShortest chooses them:
        // d.ddd × 10^exp.
        let (digits, exp) = super::value::shortest(f.abs());
        let value: BigInt = digits.parse().map_err(|_| "bad float digits".to_owned())?;
        Ok(Decimal {
            value: if f < 0.0 { -value } else { value },
            exp: i64::from(exp) - (digits.len() as i64 - 1),
        })
    }

    /// `self` written with exponent `exp` (not above its own).
    fn rescaled(&self, exp: i64) -> BigInt {
        &self.value * ten_pow(self.exp - exp)
    }

    fn add(&self, other: &Decimal, negate: bool) -> Decimal {
        let exp = self.exp.min(other.exp);
        let b = other.rescaled(exp);
        Decimal {
            value: self.rescaled(exp) + if negate { -b } else { b },
            exp,
        }
    }

    fn mul(&self, other: &Decimal) -> Decimal {
        Decimal {
            value: &self.value * &other.value,
            exp: self.exp + other.exp,
        }
    }

    /// `Decimal.DivRound(other, 16)`: the quotient truncated to 16 places, then rounded half
    /// away from zero on the remainder.
    fn div(&self, other: &Decimal) -> Result<Decimal, String> {
        if other.value.sign() == Sign::NoSign {
            return Err("decimal division by 0".to_owned());
        }
        let scale = -DIVISION_PRECISION;
        let e = self.exp - other.exp - scale;
        let (a, b, rest_exp) = if e < 0 {
            (self.value.clone(), &other.value * ten_pow(-e), self.exp)
        } else {
            (
                &self.value * ten_pow(e),
                other.value.clone(),
                scale + other.exp,
            )
        };
        let q = &a / &b;
        let r = &a - &q * &b;
        // Compare 2·|r|·10^16 (at exponent rest_exp) with |other|.
        let twice_r = Decimal {
            value: r.magnitude().clone().into(),
            exp: rest_exp + DIVISION_PRECISION,
        };
        let twice_r = Decimal {
            value: twice_r.value * 2,
            exp: twice_r.exp,
        };
        let abs_other = Decimal {
            value: other.value.magnitude().clone().into(),
            exp: other.exp,
        };
        let exp = twice_r.exp.min(abs_other.exp);
        let q = Decimal {
            value: q,
            exp: scale,
        };
        if twice_r.rescaled(exp) < abs_other.rescaled(exp) {
            return Ok(q);
        }
        let unit = Decimal {
            value: BigInt::from(1),
            exp: scale,
        };
        let away_from_zero = self.value.sign() != other.value.sign();
        Ok(q.add(&unit, away_from_zero))
    }

    /// The nearest float64 (`big.Rat.Float64`: ties to even, overflow to ±Inf, underflow to ±0).
    fn to_float(&self) -> f64 {
        let text = format!("{}e{}", self.value, self.exp);
        let f: f64 = text.parse().unwrap_or(0.0);
        if f == 0.0 && self.value.sign() == Sign::Minus {
            -0.0
        } else {
            f
        }
    }

    fn check_size(&self) -> Result<(), String> {
        // Bits bound digits: 10 digits need at least 33 bits.
        let digits = self.value.bits() * 3 / 10;
        let spread = self.exp.unsigned_abs();
        if digits > MAX_DIGITS || spread > MAX_DIGITS {
            return Err(format!(
                "more than {MAX_DIGITS} digits in a decimal intermediate result"
            ));
        }
        Ok(())
    }
}

/// sprig's `execDecimalOp`: `first`, then `op` with each of `rest` in turn, as a float64.
pub(super) fn exec(first: f64, rest: &[f64], op: Op) -> Result<f64, String> {
    let mut acc = Decimal::from_float(first)?;
    for &x in rest {
        let d = Decimal::from_float(x)?;
        // Rescaling to the smaller exponent multiplies by up to 10^(spread): bound it first.
        if (acc.exp - d.exp).unsigned_abs() > 2 * MAX_DIGITS {
            return Err(format!(
                "more than {MAX_DIGITS} digits in a decimal intermediate result"
            ));
        }
        acc = match op {
            Op::Add => acc.add(&d, false),
            Op::Sub => acc.add(&d, true),
            Op::Mul => acc.mul(&d),
            Op::Div => acc.div(&d)?,
        };
        acc.check_size()?;
    }
    Ok(acc.to_float())
}
