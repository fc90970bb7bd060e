//! Who may see and change catalog objects: organizers their own events, admins everything,
//! everyone what is published. Someone else's event answers 404, not 403.

use sea_orm::{ColumnTrait, Condition, EntityTrait};

use super::model::EventStatus;
use crate::{
    app::AppState,
    auth::{AuthUser, model::Role},
    db::entities::events,
    error::{AppError, AppResult},
};

/// The signed-in person looking at the catalog.
#[derive(Clone, Debug)]
pub struct Viewer {
    /// User id.
    pub user_id: String,
    /// Role.
    pub role: Role,
}

impl From<&AuthUser> for Viewer {
    fn from(user: &AuthUser) -> Self {
        Self {
            user_id: user.user_id.clone(),
            role: user.role,
        }
    }
}

impl Viewer {
    /// Whether the viewer manages this event.
    pub fn manages(&self, event: &events::Model) -> bool {
        self.role == Role::Admin
            || (self.role == Role::Organizer && event.organizer_id == self.user_id)
    }
}

/// Whether a (possibly anonymous) viewer may see the event: drafts only to who manages them.
pub fn can_see(viewer: Option<&Viewer>, event: &events::Model) -> bool {
    EventStatus::from_db(&event.status) != EventStatus::Draft
        || viewer.is_some_and(|v| v.manages(event))
}

/// The listing condition: public events for everyone, plus their own drafts for organizers and
/// every draft for admins; an explicit status narrows it.
pub fn visibility(viewer: Option<&Viewer>, status: Option<EventStatus>) -> Condition {
    let public = match status {
        Some(EventStatus::Draft) => Condition::all().add(events::Column::Id.is_null()),
        Some(s) => Condition::all().add(events::Column::Status.eq(s.as_str())),
        None => Condition::all().add(events::Column::Status.eq(EventStatus::Published.as_str())),
    };
    let drafts = match viewer {
        Some(v) if status.is_none() || status == Some(EventStatus::Draft) => match v.role {
            Role::Admin => {
                Some(Condition::all().add(events::Column::Status.eq(EventStatus::Draft.as_str())))
            }
            Role::Organizer => Some(
                Condition::all()
                    .add(events::Column::Status.eq(EventStatus::Draft.as_str()))
                    .add(events::Column::OrganizerId.eq(v.user_id.as_str())),
            ),
            Role::User => None,
        },
        _ => None,
    };
    match drafts {
        Some(d) => Condition::any().add(public).add(d),
        None => public,
    }
}

/// Loads an event the viewer manages; anything else is 404.
pub async fn manageable_event(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
) -> AppResult<events::Model> {
    events::Entity::find_by_id(id.to_owned())
        .one(&state.db)
        .await?
        .filter(|e| viewer.manages(e))
        .ok_or_else(AppError::not_found)
}
