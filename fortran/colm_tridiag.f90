! Tridiagonal linear solver (Thomas algorithm) shared by the soil-water and heat solvers.
module colm_tridiag
  use colm_const, only: r8
  implicit none
  private
  public :: tridiag_solve
contains
  ! Solves a(j) u(j-1) + b(j) u(j) + c(j) u(j+1) = r(j), j = 1..n; a(1) and c(n) are ignored.
  ! The matrices built by the soil solvers are diagonally dominant, so no pivoting is needed.
  pure subroutine tridiag_solve(n, a, b, c, r, u)
    integer, intent(in) :: n             ! number of unknowns (-)
    real(r8), intent(in) :: a(n)         ! sub-diagonal (units of the system)
    real(r8), intent(in) :: b(n)         ! diagonal
    real(r8), intent(in) :: c(n)         ! super-diagonal
    real(r8), intent(in) :: r(n)         ! right-hand side
    real(r8), intent(out) :: u(n)        ! solution
    real(r8) :: gam(n), bet              ! elimination factors
    integer :: j
    bet = b(1)
    u(1) = r(1) / bet
    do j = 2, n
      gam(j) = c(j-1) / bet
      bet = b(j) - a(j) * gam(j)
      u(j) = (r(j) - a(j) * u(j-1)) / bet
    end do
    do j = n - 1, 1, -1
      u(j) = u(j) - gam(j+1) * u(j+1)
    end do
  end subroutine tridiag_solve
end module colm_tridiag
