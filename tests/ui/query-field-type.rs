// What `query_as!` generates for a nullable TEXT column read into a field
// of type `String`: the build fails at the field.
use durable_schema::__private::query::{Query, QueryError, Row};

struct Msg {
    body: String,
}

fn map(row: &Row<'_>) -> Result<Msg, QueryError> {
    Ok(Msg {
        body: row.get_checked::<Option<String>, _>(0, "body")?,
    })
}

fn main() {
    let _ = Query::<Msg>::__new("SELECT body FROM messages", vec![], map);
}
