//! The `package_components` table.

use sea_orm::entity::prelude::*;

/// One row of `package_components`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "package_components")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub package_id: String,
    pub event_id: String,
    pub component_product_id: String,
    pub component_variant_id: Option<String>,
    pub quantity: i32,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
