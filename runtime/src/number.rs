//! An `f64` as text, exactly as its `Display` writes it, without linking
//! core's float formatting into a Worker.
//!
//! The runtime prints floats in two places: a run's `duration_ms` in
//! [`Wake::log_line`](crate::Wake::log_line) and a REAL read back from a
//! Durable Object (the backend's values are integers or text). Core's float
//! formatting (Grisu with its Dragon fallback, and their tables) is about
//! 20 KB of wasm, which every Worker would pay on every cold start for two
//! numbers that are nearly always whole. So: whole numbers go through integer
//! formatting, and on wasm32 the rest through JavaScript's
//! `Number.prototype.toString`, whose digits are the same shortest
//! round-trip digits, rewritten from its exponent form (`1e+21`, `1.5e-7`)
//! to the plain decimal `Display` writes. Elsewhere the rest is `Display`.

/// `x` as `format!("{x}")` writes it.
pub(crate) fn f64_text(x: f64) -> String {
    // Below 2^53 every whole f64 is exactly an i64, printed with the same
    // digits; -0.0 keeps its sign, as `Display` does.
    if x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 {
        let digits = (x as i64).to_string();
        return if x == 0.0 && x.is_sign_negative() {
            "-0".to_owned()
        } else {
            digits
        };
    }
    other(x)
}

#[cfg(target_arch = "wasm32")]
fn other(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    // `to_string` is deprecated from js-sys 0.3.107 on for
    // `to_string_with_radix`, which older 0.3 versions lack.
    #[allow(deprecated)]
    let js = js_sys::Number::from(x)
        .to_string(10)
        .map(String::from)
        .unwrap_or_default();
    plain_decimal(&js)
}

#[cfg(not(target_arch = "wasm32"))]
fn other(x: f64) -> String {
    x.to_string()
}

/// A finite number as JavaScript writes it (`123.5`, `-1.5e-7`, `1e+21`)
/// in plain decimal notation (`0.00000015`, `1000000000000000000000`).
#[cfg_attr(not(any(target_arch = "wasm32", test)), allow(dead_code))]
fn plain_decimal(js: &str) -> String {
    let Some((mantissa, exponent)) = js.split_once('e') else {
        return js.to_owned();
    };
    let Ok(exponent) = exponent.parse::<i32>() else {
        return js.to_owned();
    };
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    // Where the decimal point goes, counted in digits from the left.
    let point = i32::try_from(int.len())
        .unwrap_or(i32::MAX)
        .saturating_add(exponent);
    let mut out = String::from(sign);
    if point <= 0 {
        out.push_str("0.");
        zeros(&mut out, point.unsigned_abs() as usize);
        out.push_str(&digits);
    } else {
        let point = point as usize;
        if point >= digits.len() {
            out.push_str(&digits);
            zeros(&mut out, point - digits.len());
        } else {
            out.push_str(&digits[..point]);
            out.push('.');
            out.push_str(&digits[point..]);
        }
    }
    out
}

/// `n` zeros, pushed one by one: `extend` with `repeat_n` instantiates
/// `String`'s char-extending code for one caller (about 500 bytes of wasm).
#[cfg_attr(not(any(target_arch = "wasm32", test)), allow(dead_code))]
fn zeros(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push('0');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What JavaScript's `toString` writes for `x` outside
    /// [1e-7, 1e21): the shortest round-trip digits in exponent form, which
    /// Rust's `{:e}` writes too, but for the exponent's `+`.
    fn js_exponent_form(x: f64) -> String {
        let e = format!("{x:e}");
        match e.split_once('e') {
            Some((m, exp)) if !exp.starts_with('-') => format!("{m}e+{exp}"),
            _ => e,
        }
    }

    fn samples() -> Vec<f64> {
        let mut xs = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            1.5,
            0.1,
            0.30000000000000004,
            2.0,
            1e15,
            1e16,
            9_007_199_254_740_991.0,
            9_007_199_254_740_992.0,
            1e20,
            1e21,
            1.5e21,
            1.2345e25,
            1e-6,
            1e-7,
            1.5e-7,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            123_456.789,
            -0.000_012_5,
        ];
        // A fixed xorshift sequence of bit patterns, finite ones only.
        let mut s: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..2000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let x = f64::from_bits(s);
            if x.is_finite() {
                xs.push(x);
            }
        }
        xs
    }

    #[test]
    fn the_text_is_what_display_writes() {
        for x in samples()
            .into_iter()
            .chain([f64::NAN, f64::INFINITY, f64::NEG_INFINITY])
        {
            assert_eq!(f64_text(x), x.to_string(), "{x:e}");
        }
    }

    #[test]
    fn javascripts_exponent_form_becomes_displays_decimal() {
        for x in samples() {
            assert_eq!(plain_decimal(&js_exponent_form(x)), x.to_string(), "{x:e}");
            // JavaScript's decimal form (1e-7 <= |x| < 1e21) is Display's.
            assert_eq!(plain_decimal(&x.to_string()), x.to_string());
        }
    }
}
