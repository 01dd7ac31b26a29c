// What `query!` generates for `WHERE id = ?` (an INTEGER column) when the
// argument is a `String`: the build fails at the argument.
use durable_schema::__private::query::{check_arg, Integer};

fn main() {
    let id = String::from("1");
    check_arg::<Integer, _>(&id);
}
