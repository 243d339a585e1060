//! The statement pool gives a connection back with no ping only when its statement answered or
//! was refused by the database, and the next statement on it answers its own question; a
//! connection whose statement was abandoned half-way is closed, never reused.

use std::time::Duration;

use projections::database::connect_and_migrate;
use projections::statement_pool::StatementPool;
use projections::testing::sqlx;
use projections::testing::TestDatabase;

async fn pool_of(size: u32) -> (TestDatabase, sqlx::PgPool, StatementPool) {
    let database = TestDatabase::create().await;
    let pool = connect_and_migrate(&database.url, size).await.unwrap();
    let statements = StatementPool::beside(&pool);
    (database, pool, statements)
}

/// The backend serving the connection, and `n` back: which connection answered what.
async fn backend_and(statements: &StatementPool, n: i32) -> (i32, i32) {
    let mut connection = statements.acquire().await.unwrap();
    let answer = sqlx::query_as("SELECT pg_backend_pid(), $1::int")
        .bind(n)
        .fetch_one(&mut *connection)
        .await;
    connection.give_back(&answer);
    answer.unwrap()
}

#[tokio::test]
async fn an_answered_statement_gives_its_connection_back_for_the_next() {
    let (_database, _pool, statements) = pool_of(2).await;
    let (first, one) = backend_and(&statements, 1).await;
    assert_eq!(one, 1);
    assert_eq!(statements.idle(), 1);
    let (second, two) = backend_and(&statements, 2).await;
    assert_eq!(two, 2, "the reused connection answers its own statement");
    assert_eq!(first, second, "the same connection served both");
}

#[tokio::test]
async fn a_refused_statement_leaves_a_connection_that_answers_the_next_one_right() {
    let (_database, _pool, statements) = pool_of(1).await;
    let (before, _) = backend_and(&statements, 0).await;
    let mut connection = statements.acquire().await.unwrap();
    // An error in the middle of the rows: the rest of the answer is left unread.
    let refused =
        sqlx::query_scalar::<_, i32>("SELECT 10 / (3 - g) FROM generate_series(1, 5) AS g")
            .fetch_all(&mut *connection)
            .await;
    assert!(
        matches!(refused, Err(sqlx::Error::Database(_))),
        "{refused:?}"
    );
    connection.give_back(&refused);
    assert_eq!(statements.idle(), 1, "a refusal keeps the connection");
    for n in 1..=3 {
        let (after, answer) = backend_and(&statements, n).await;
        assert_eq!(answer, n);
        assert_eq!(after, before);
    }
}

#[tokio::test]
async fn a_statement_abandoned_half_way_closes_its_connection() {
    let (_database, pool, statements) = pool_of(1).await;
    let (before, _) = backend_and(&statements, 0).await;
    let mut connection = statements.acquire().await.unwrap();
    let abandoned = tokio::time::timeout(
        Duration::from_millis(100),
        sqlx::query("SELECT pg_sleep(5)").execute(&mut *connection),
    )
    .await;
    assert!(abandoned.is_err(), "the statement was cut off");
    drop(connection);
    assert_eq!(statements.idle(), 0, "not given back");
    // The only permit is free again, on a new connection.
    let (after, answer) = backend_and(&statements, 7).await;
    assert_eq!(answer, 7);
    assert_ne!(after, before, "a fresh connection");
    // The abandoned one is gone from the server (its sleep ends with its socket).
    let mut gone = false;
    for _ in 0..100 {
        let alive: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)")
                .bind(before)
                .fetch_one(&pool)
                .await
                .unwrap();
        if !alive {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the abandoned connection was closed");
}

#[tokio::test]
async fn it_opens_half_as_many_connections_as_the_pool_beside_it_and_closes_with_it() {
    let (_database, pool, statements) = pool_of(4).await;
    let first = statements.acquire().await.unwrap();
    let second = statements.acquire().await.unwrap();
    let third = tokio::time::timeout(Duration::from_millis(200), statements.acquire()).await;
    assert!(third.is_err(), "a third waits while two are out");
    drop(first);
    let third = tokio::time::timeout(Duration::from_secs(5), statements.acquire()).await;
    assert!(matches!(third, Ok(Ok(_))), "and gets one when one ends");
    drop((second, third));
    pool.close().await;
    assert!(matches!(
        statements.acquire().await,
        Err(sqlx::Error::PoolClosed)
    ));
}
